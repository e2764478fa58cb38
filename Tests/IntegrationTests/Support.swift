import BTEDomain
import BTEFixtures
import BTEIngest
import BTETestSupport
import BTEWorker
import Foundation
import Kafka
import Metrics
import Postgres
import Testing

func ingestUntilIdle(
    _ db: TestDatabase, _ topics: TestTopics, group: String, batch: Int = 1_000,
    metrics: any MetricsFactory = MetricsSystem.factory
) throws -> IngestSummary {
    var config = IngestConfiguration(brokers: topics.brokers, databaseURL: db.ingestURL)
    config.group = group
    config.topicPrefix = topics.prefix
    config.untilIdle = true
    config.sessionTimeoutMilliseconds = 6_000
    config.maxBatchMessages = batch
    return try IngestWorker(configuration: config, logger: TestEnvironment.logger, metrics: metrics).run(
        stop: StopSignal())
}

func demoStream(_ topics: TestTopics, events: Int, seed: UInt64, badRounds: Int = 1) -> DemoStream {
    var options = DemoStream.Options()
    options.events = events
    options.seed = seed
    options.badRounds = badRounds
    options.topicPrefix = topics.prefix
    return DemoStream(options: options)
}

/// Stored rows per log.
func storedCounts(_ db: TestDatabase) throws -> [LogTable: Int] {
    var counts: [LogTable: Int] = [:]
    for table in LogTable.allCases { counts[table] = try db.count("SELECT count(*) FROM \(table.rawValue)") }
    return counts
}

func rejectedCounts(_ db: TestDatabase) throws -> [String: Int] {
    var counts: [String: Int] = [:]
    for row in try db.admin().execute("SELECT error_code, count(*) FROM bte.rejected_events GROUP BY 1").rows {
        counts[row[0] ?? ""] = Int(row[1] ?? "") ?? 0
    }
    return counts
}

/// An order-independent digest of everything ingest wrote: ids, content, provenance, rejects.
func contentDigest(_ db: TestDatabase) throws -> [String] {
    var digests: [String] = []
    for table in LogTable.allCases {
        let id = RecordSchema.forTable(table).idField
        let row = try db.admin().execute(
            """
            SELECT count(*), md5(coalesce(string_agg(\(id)::text || ':' || content_hash
                || ':' || source_topic || ':' || source_partition || ':' || source_offset, ',' ORDER BY \(id)), ''))
            FROM \(table.rawValue)
            """
        ).rows[0]
        digests.append("\(table.rawValue) \(row[0] ?? "") \(row[1] ?? "")")
    }
    let rejects = try db.admin().execute(
        """
        SELECT count(*), md5(coalesce(string_agg(source_topic || ':' || source_partition || ':' || source_offset
            || ':' || error_code, ',' ORDER BY source_topic, source_partition, source_offset), ''))
        FROM bte.rejected_events
        """
    ).rows[0]
    digests.append("rejected \(rejects[0] ?? "") \(rejects[1] ?? "")")
    return digests
}

func expectedCodes(_ stream: DemoStream) -> [String: Int] {
    Dictionary(uniqueKeysWithValues: stream.expectedRejected.map { ($0.key.rawValue, $0.value) })
}

/// A readable fixed UUID: `fixtureUUID(42)` is 00000000-0000-4000-8000-000000000042.
func fixtureUUID(_ n: Int, prefix: String = "00000000") -> String {
    let digits = String(n)
    return "\(prefix)-0000-4000-8000-" + String(repeating: "0", count: max(12 - digits.count, 0)) + digits
}

/// Runs `bte arguments`, expects exit 0, and returns what it printed.
@discardableResult
func runBTE(_ arguments: [String], _ env: [String: String]) throws -> String {
    let process = try BTEProcess(arguments, environment: env)
    let status = process.wait(timeout: 120)
    #expect(
        status == 0,
        "bte \(arguments.joined(separator: " ")) exited \(status.map(String.init) ?? "late"): \(process.log)")
    return process.log
}

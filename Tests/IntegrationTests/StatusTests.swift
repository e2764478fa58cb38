import BTETestSupport
import Foundation
import Kafka
import Testing

/// `bte status` against the real servers: lag in messages and seconds, rejects, versions, and
/// its exit codes.
@Suite(.serialized) struct StatusTests {
    static func status(_ arguments: [String], _ db: TestDatabase, _ topics: TestTopics) throws -> (
        Int32?, [String: Any]
    ) {
        let process = try BTEProcess(
            ["status", "--format", "json", "--topic-prefix", topics.prefix] + arguments,
            environment: ["BTE_KAFKA_BROKERS": topics.brokers, "BTE_READER_DATABASE_URL": db.readerURL])
        let code = process.wait(timeout: 120)
        let line = process.log.split(separator: "\n").first { $0.hasPrefix("{") } ?? ""
        return (code, try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:])
    }

    @Test func lagRejectsVersionsAndExitCodes() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let topic = topics.prefix + "bte.interaction-events.v1"
        // 30 events, 10 per partition, and 2 that are not JSON.
        try topics.produce(
            ReplayTests.interactions(topics, count: 30) + [
                KafkaOutgoingMessage(topic: topic, key: Array("k".utf8), value: Array("{not json".utf8), partition: 0),
                KafkaOutgoingMessage(topic: topic, key: Array("k".utf8), value: Array("[1]".utf8), partition: 1),
            ])
        let ingestGroup = TestEnvironment.uniqueName("ingest-")
        _ = try ingestUntilIdle(db, topics, group: ingestGroup)
        let projectorGroup = TestEnvironment.uniqueName("projector-")
        Thread.sleep(forTimeInterval: 2)

        let groups = ["--ingest-group", ingestGroup, "--projector-group", projectorGroup]
        let (code, report) = try Self.status(groups + ["--max-lag-seconds", "3600"], db, topics)
        #expect(code == 0, "\(report)")
        #expect(report["status"] as? String == "healthy")
        // The schema version is the newest migration's name.
        let migrations = try FileManager.default.contentsOfDirectory(
            atPath: TestEnvironment.packageRoot.appendingPathComponent("Sources/BTEStore/Migrations").path)
        let newest = migrations.filter { $0.hasSuffix(".sql") }.sorted().last?.replacingOccurrences(
            of: ".sql", with: "")
        #expect((report["versions"] as? [String: Any])?["schema"] as? String == newest)
        // The migration's two default thresholds are changes 1 and 2: version 2.
        #expect((report["versions"] as? [String: Any])?["thresholds"] as? Int == 2)
        #expect(report["rejects_last_24h"] as? [String: Int] == ["invalid_json": 1, "not_an_object": 1])
        let byGroup = Dictionary(
            uniqueKeysWithValues: (report["groups"] as? [[String: Any]] ?? []).map {
                ($0["group"] as? String ?? "", $0["partitions"] as? [[String: Any]] ?? [])
            })
        // Ingest stored everything: offsets 11, 11, 10 at ends 11, 11, 10 (the two rejects
        // count as processed); its other topics are empty.
        let ingest = byGroup[ingestGroup] ?? []
        #expect(ingest.count == 9)
        let ingestInteractions = ingest.filter { $0["topic"] as? String == topic }
        #expect(ingestInteractions.map { $0["offset"] as? Int } == [11, 11, 10])
        #expect(ingestInteractions.map { $0["end"] as? Int } == [11, 11, 10])
        #expect(ingest.allSatisfy { $0["lag_messages"] as? Int == 0 && $0["lag_seconds"] as? Double == 0 })
        // The projector never ran: its whole input is behind, the oldest message at least the
        // 2 s this test slept.
        let projector = (byGroup[projectorGroup] ?? []).filter { $0["topic"] as? String == topic }
        #expect(projector.map { $0["lag_messages"] as? Int } == [11, 11, 10])
        #expect(projector.allSatisfy { $0["offset"] is NSNull })
        #expect(projector.allSatisfy { ($0["lag_seconds"] as? Double ?? 0) >= 2 }, "\(projector)")
        #expect((byGroup[projectorGroup] ?? []).count == 6)

        // The sink's group, when asked for: offsets in PostgreSQL over the three output topics.
        try createOutputTopics(topics)
        let w = SinkTests.workspace
        try topics.produce(
            ["2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"].map {
                OutputRecords.message(
                    .signals, topics, key: w,
                    OutputRecords.signal(workspace: w, type: "momentum", value: "1", asOf: $0))
            })
        let sinkGroup = TestEnvironment.uniqueName("sink-")
        _ = try sinkUntilIdle(db, topics, group: sinkGroup)
        let (sinkCode, withSink) = try Self.status(
            groups + ["--sink-group", sinkGroup, "--max-lag-seconds", "3600"], db, topics)
        #expect(sinkCode == 0, "\(withSink)")
        let sink =
            (withSink["groups"] as? [[String: Any]] ?? []).first { $0["group"] as? String == sinkGroup }?["partitions"]
            as? [[String: Any]] ?? []
        // 3 topics × 3 partitions; both records (one key, one partition) stored, nothing behind.
        #expect(sink.count == 9)
        #expect(sink.compactMap { $0["offset"] as? Int }.reduce(0, +) == 2)
        #expect(sink.allSatisfy { $0["lag_messages"] as? Int == 0 })

        // The same lag over a 1 s limit: degraded, exit 1.
        let (degradedCode, degraded) = try Self.status(groups + ["--max-lag-seconds", "1"], db, topics)
        #expect(degradedCode == 1)
        #expect(degraded["status"] as? String == "degraded")

        // Nothing reachable: exit 2, the problem named.
        let (unreachableCode, unreachable) = try Self.status(groups + ["--brokers", "127.0.0.1:1"], db, topics)
        #expect(unreachableCode == 2)
        #expect(unreachable["status"] as? String == "unreachable")
        #expect((unreachable["problems"] as? [String])?.first?.hasPrefix("Kafka") == true, "\(unreachable)")
    }

    /// A recorded backup older than the limit makes the status degraded; within it, healthy; the
    /// database part names the server's role and the backup.
    @Test func anOldBackupIsAProblem() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let (fresh, none) = try Self.status([], db, topics)
        #expect(fresh == 0, "\(none)")
        let empty = none["database"] as? [String: Any]
        #expect(empty?["role"] as? String == "primary" && empty?["last_backup_type"] is NSNull, "\(none)")
        // Finished 30 hours ago (the table is append-only: a backup is recorded, never changed).
        try db.admin().execute(
            """
            INSERT INTO bte.backups (label, backup_type, started_at, stopped_at, size_bytes)
            VALUES ('20261201-000000F', 'full', now() - interval '30 hours 5 minutes', now() - interval '30 hours', 1)
            """)
        let (old, report) = try Self.status([], db, topics)
        #expect(old == 1, "\(report)")
        let problems = report["problems"] as? [String] ?? []
        #expect(
            problems.contains("the last backup finished 30.0 h ago (more than --max-backup-age-hours 26)"),
            "\(problems)")
        let database = report["database"] as? [String: Any]
        #expect(database?["last_backup_type"] as? String == "full")
        // 30 h = 108,000 s, give or take the time the command took.
        let age = database?["backup_age_seconds"] as? Double ?? 0
        #expect(age >= 108_000 && age < 108_060, "\(age)")
        let (within, _) = try Self.status(["--max-backup-age-hours", "48"], db, topics)
        #expect(within == 0)
    }
}

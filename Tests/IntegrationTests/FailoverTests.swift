import BTEDomain
import BTETestSupport
import Foundation
import Kafka
import Testing

/// PostgreSQL failover under load, against real servers: a primary and a streaming standby
/// (`scripts/pg-cluster.sh`), every worker given both hosts in one libpq URL. The primary is
/// killed while ingest, the projector and the sink run and the stream keeps coming; the API goes
/// on serving workspace reads from the standby; the standby is promoted. Every event is stored
/// exactly once, the projector's records are the ones a fresh run publishes, byte for byte, and
/// the sink stores each once.
@Suite(.serialized) struct FailoverTests {
    @Test func promotingTheStandbyUnderLoadLosesAndDoublesNothing() throws {
        let root = "/var/tmp/" + TestEnvironment.uniqueName("bte-failover-")
        let primary = ScratchCluster(directory: root + "/primary", port: freePort())
        let standby = ScratchCluster(directory: root + "/standby", port: freePort())
        var workers: [BTEProcess] = []
        defer {
            for worker in workers where worker.process.isRunning { worker.signal(SIGKILL) }
            primary.stop()
            standby.stop()
            try? FileManager.default.removeItem(atPath: root)
        }
        try runScript("pg-cluster.sh", ["init", primary.directory])
        try runScript("pg-cluster.sh", ["start", primary.directory, String(primary.port)])
        let db = try TestDatabase(cluster: primary.url)
        try runScript("pg-cluster.sh", ["standby", standby.directory, String(standby.port), String(primary.port)])
        try runScript("pg-cluster.sh", ["start", standby.directory, String(standby.port)])

        // Writers and the projector (whose locks fence erasures) need the primary, whichever host
        // it is; the API reads from any, the primary first.
        let hosts = "127.0.0.1:\(primary.port),127.0.0.1:\(standby.port)"
        func url(_ role: String, _ attrs: String) -> String {
            "postgresql://\(role)@\(hosts)/\(db.name)?target_session_attrs=\(attrs)&connect_timeout=3"
        }
        let writerURL = url("bte_ingest", "read-write")
        // The reader role's sessions are read-only by default: "primary" rather than "read-write".
        let projectorURL = url("bte_reader", "primary")
        let apiURL = url("bte_reader", "any")

        let topics = try TestTopics()
        try ReplayIdentityTests.createOutputTopics(topics)
        let stream = demoStream(topics, events: 6_000, seed: 61, badRounds: 1)
        let half = stream.messages.count / 2
        try topics.produce(Array(stream.messages[..<half]))
        let ingestGroup = TestEnvironment.uniqueName("ingest-")
        let env = ["BTE_LOG_LEVEL": "info", "BTE_KAFKA_BROKERS": topics.brokers]
        let common = ["--topic-prefix", topics.prefix, "--session-timeout-ms", "6000"]
        workers.append(
            try BTEProcess(
                ["ingest", "--database-url", writerURL, "--group", ingestGroup, "--batch-size", "300"] + common,
                environment: env))
        workers.append(
            try BTEProcess(
                [
                    "project", "--reader-database-url", projectorURL, "--ingest-group", ingestGroup, "--group",
                    TestEnvironment.uniqueName("projector-"),
                ] + common, environment: env))
        workers.append(
            try BTEProcess(
                ["sink", "--database-url", writerURL, "--group", TestEnvironment.uniqueName("sink-")] + common,
                environment: env))
        let logs = { workers.map(\.log).joined(separator: "\n---\n") }
        #expect(
            try eventually(timeout: 90) {
                try db.count("SELECT count(*) FROM bte.bv_history") > 0
                    && storedCounts(db).values.reduce(0, +) > 1_000
            }, "\(logs())")

        let workspace =
            try db.admin().execute("SELECT workspace_id::text FROM core.business_events LIMIT 1")
            .rows.first?[0] ?? ""
        let key = try APITests.createKey(db, scope: "read", workspace: workspace)
        let port = freePort()
        let api = try BTEProcess(
            [
                "serve", "--port", String(port), "--brokers", topics.brokers, "--reader-database-url", apiURL,
                "--topic-prefix", topics.prefix,
            ], environment: env)
        workers.append(api)
        #expect(eventually(timeout: 30) { httpGet(port: port, path: "/healthz")?.status == 200 }, "\(api.log)")
        func read(_ path: String) -> (status: Int, headers: [String: String], body: String)? {
            httpRequest(port: port, method: "GET", path: path, headers: ["Authorization": "Bearer \(key)"])
        }
        let signals = "/v1/workspaces/\(workspace)/signals"
        #expect(read(signals)?.status == 200)
        // The primary reports its standby streaming, to `bte status` and to /metrics.
        let status = try BTEProcess(
            ["status", "--format", "json", "--topic-prefix", topics.prefix, "--reader-database-url", projectorURL],
            environment: env)
        _ = status.wait(timeout: 60)
        #expect(status.log.contains(#""role":"primary""#), "\(status.log)")
        #expect(status.log.contains(#""state":"streaming""#), "\(status.log)")
        #expect(
            eventually(timeout: 30) {
                httpGet(port: port, path: "/metrics")?.body.contains("bte_postgres_replication_lag_seconds{") == true
            })

        // The primary is lost mid-stream; the rest of the stream keeps arriving.
        try runScript("pg-cluster.sh", ["stop", primary.directory, "immediate"])
        try topics.produce(Array(stream.messages[half...]))
        // Meanwhile the API serves workspace reads from the standby; a person's read, which must
        // be recorded first, is refused as read-only rather than served unrecorded.
        #expect(eventually(timeout: 30) { read(signals)?.status == 200 }, "\(api.log)")
        let personal = read("/api/v1/behavioral-vectors/\(fixtureUUID(1))")
        #expect(
            personal?.status == 503 && personal?.body.contains("\"read_only\"") == true,
            "\(String(describing: personal))")
        Thread.sleep(forTimeInterval: 3)
        // Nothing can be stored meanwhile: the standby holds less than the stream.
        let promotedDB = try TestDatabase(cluster: standby.url, existing: db.name)
        #expect(try storedCounts(promotedDB).values.reduce(0, +) < stream.totalStored)

        try runScript("pg-cluster.sh", ["promote", standby.directory])
        let promoted = Date()
        let complete = try eventually(timeout: 120) {
            try storedCounts(promotedDB).values.reduce(0, +) == stream.totalStored
                && promotedDB.count(
                    "SELECT sum(next_offset) FROM bte.ingest_offsets WHERE consumer_group = '\(ingestGroup)'")
                    == stream.total
        }
        let offsetsNow = try? promotedDB.admin().execute("SELECT sum(next_offset) FROM bte.ingest_offsets").rows
        let diagnosis: String =
            "stored \((try? storedCounts(promotedDB)) ?? [:]) of \(stream.expectedStored); offsets "
            + "\(offsetsNow ?? []) of \(stream.total)\n\(logs())"
        #expect(complete, "\(diagnosis)")
        let storedAfter = Date().timeIntervalSince(promoted)
        // Exactly once: the rows and rejects the stream calls for, offsets covering every message.
        #expect(try storedCounts(promotedDB) == stream.expectedStored)
        #expect(try rejectedCounts(promotedDB) == expectedCodes(stream))
        #expect(workers[0].log.contains("pausing and retrying"), "ingest never saw the outage: \(workers[0].log)")
        #expect(read("/api/v1/behavioral-vectors/\(fixtureUUID(1))")?.status != 503)

        // The projector's records: once the sink has stored all it published, a fresh projector
        // on the promoted cluster publishes the same ids with the same bytes.
        func sinkCaughtUp() throws -> Bool {
            let published = try ReplayIdentityTests.published(topics)
            let vectors = published.keys.filter { $0.hasPrefix("bte.behavioral-vectors.v1 ") }.count
            let insights = published.keys.filter { $0.hasPrefix("bte.insights.v1 ") }.count
            return try promotedDB.count("SELECT count(*) FROM bte.bv_history") == vectors
                && promotedDB.count("SELECT count(*) FROM bte.insights") == insights
        }
        #expect(try eventually(timeout: 120) { try sinkCaughtUp() }, "\(logs())")
        let caughtUpAfter = Date().timeIntervalSince(promoted)
        for worker in workers {
            worker.signal(SIGTERM)
            #expect(worker.wait(timeout: 30) == 0, "\(worker.log)")
        }
        let live = try ReplayIdentityTests.published(topics)
        try runBTE(
            [
                "project", "--until-idle", "--topic-prefix", topics.prefix, "--ingest-group", ingestGroup,
                "--group", TestEnvironment.uniqueName("projector-fresh-"),
            ], ["BTE_KAFKA_BROKERS": topics.brokers, "BTE_READER_DATABASE_URL": promotedDB.readerURL])
        let both = try ReplayIdentityTests.published(topics)
        // The same ids with the same bytes, those built from other workspaces' successes included:
        // which successes a row counts is fixed by the log (the peer order), not by timing.
        #expect(Set(both.keys) == Set(live.keys))
        let differing = both.filter { Set($0.value).count != 1 }.keys.sorted()
        #expect(differing.isEmpty, "records published differently: \(differing.prefix(5))")
        #expect(
            try promotedDB.count("SELECT count(*) FROM bte.signal_values")
                == live.keys.filter { $0.hasPrefix("bte.signals.v1 ") }.count)
        print(
            "failover: all stored \(String(format: "%.1f", storedAfter)) s after the promotion, "
                + "the sink caught up after \(String(format: "%.1f", caughtUpAfter)) s")
    }
}

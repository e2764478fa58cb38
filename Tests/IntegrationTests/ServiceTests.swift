import BTETestSupport
import Foundation
import Kafka
import Testing

/// Long-running commands as services: one process can run several workers, each serves
/// `/metrics`, `/healthz` and `/readyz`, and SIGTERM drains and exits 0.
@Suite(.serialized) struct ServiceTests {
    static func outputTopics(_ topics: TestTopics) throws {
        let admin = try KafkaAdmin(configuration: KafkaClientConfiguration(brokers: topics.brokers))
        _ = try admin.createTopics(
            ["bte.signals.v1", "bte.behavioral-vectors.v1", "bte.insights.v1"].map {
                KafkaNewTopic(name: topics.prefix + $0, partitions: 3, replicationFactor: 1)
            })
    }

    /// `bte run ingest project`: an event goes in, is stored, and its signals come out, from one
    /// process; readiness covers both workers; SIGTERM ends both with exit 0.
    @Test func runIngestAndProjectInOneProcess() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        try Self.outputTopics(topics)
        let port = freePort()
        let process = try BTEProcess(
            [
                "run", "ingest", "project", "--brokers", topics.brokers, "--database-url", db.ingestURL,
                "--reader-database-url", db.readerURL, "--topic-prefix", topics.prefix, "--session-timeout-ms", "6000",
                "--ingest-group", TestEnvironment.uniqueName("ingest-"), "--projector-group",
                TestEnvironment.uniqueName("projector-"),
                "--metrics-port", String(port),
            ],
            environment: ["BTE_LOG_LEVEL": "info"])
        defer { if process.process.isRunning { process.signal(SIGKILL) } }

        #expect(eventually(timeout: 30) { httpGet(port: port, path: "/healthz")?.status == 200 }, "\(process.log)")
        #expect(eventually(timeout: 60) { httpGet(port: port, path: "/readyz")?.status == 200 }, "\(process.log)")
        #expect(httpGet(port: port, path: "/readyz")?.body == "ingest ready\nproject ready\n")

        // One given and its act 3 hours later: decision_latency = 10800 s.
        let ws = "12121212-1212-4121-8121-121212121212"
        let messages = [
            ("recommendation.given", "2026-01-10T00:00:00Z", #"{"action_type":"upsell","expected_value":100}"#),
            ("recommendation.acted", "2026-01-10T03:00:00Z", #"{"outcome":"success","realized_value":40}"#),
        ]
        .enumerated().map { n, event in
            let value = """
                {"record_type":"business_event","event_id":"00000000-0000-4000-8000-00000000000\(n + 1)",
                 "event_type":"\(event.0)",
                 "entity_type":"recommendation","entity_id":"eeeeeeee-0000-4000-8000-000000000001",
                 "workspace_id":"\(ws)",
                 "sub_vertical_id":"33333333-3333-4333-8333-333333333333",
                 "actor_user_id":"aaaaaaaa-0000-4000-8000-00000000000a",
                 "timestamp":"\(event.1)","metadata":\(event.2)}
                """
            return KafkaOutgoingMessage(
                topic: topics.prefix + "bte.business-events.v1", key: Array(ws.utf8), value: Array(value.utf8))
        }
        try topics.produce(messages)
        let latency = try eventually(timeout: 60) {
            try topics.readAll(topics.prefix + "bte.signals.v1").contains {
                let text = String(decoding: $0.value ?? [], as: UTF8.self)
                return text.contains(#""signal_type":"decision_latency""#) && text.contains(#""signal_value":10800"#)
            }
        }
        #expect(latency, "\(process.log)")
        #expect(try db.count("SELECT count(*) FROM core.business_events") == 2)
        // Ingest books a written batch (and counts it) on its next pass, a moment after the commit.
        let counted = eventually(timeout: 10) {
            httpGet(port: port, path: "/metrics")?.body.contains("bte_ingest_messages_consumed_total 2") == true
        }
        #expect(counted, "\(httpGet(port: port, path: "/metrics")?.body.prefix(2_000) ?? "")")
        // The projector's own figures: both messages consumed, a freshness sample for each,
        // signals published; both workers ready.
        let metrics = httpGet(port: port, path: "/metrics")?.body ?? ""
        for line in [
            "bte_projector_messages_consumed_total 2", "bte_projector_freshness_seconds_count 2",
            #"bte_worker_ready{worker="ingest"} 1.0"#, #"bte_worker_ready{worker="project"} 1.0"#,
        ] {
            #expect(metrics.split(separator: "\n").contains { $0 == line }, "\(line) in \(metrics)")
        }
        #expect(metrics.contains(#"bte_projector_outputs_total{topic="bte.signals.v1"} "#), "\(metrics)")
        #expect(metrics.contains("bte_projector_batch_duration_seconds_count "), "\(metrics)")
        process.signal(SIGTERM)
        #expect(process.wait(timeout: 30) == 0, "\(process.log)")
        #expect(process.log.contains("ingest stopping"))
    }

    /// `bte project` drains and exits 0 on SIGTERM.
    @Test func projectExitsZeroOnSigterm() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        try Self.outputTopics(topics)
        let process = try BTEProcess(
            [
                "project", "--brokers", topics.brokers, "--reader-database-url", db.readerURL, "--topic-prefix",
                topics.prefix,
                "--session-timeout-ms", "6000", "--group", TestEnvironment.uniqueName("projector-"),
            ],
            environment: ["BTE_LOG_LEVEL": "info"])
        defer { if process.process.isRunning { process.signal(SIGKILL) } }
        #expect(eventually(timeout: 60) { process.log.contains("projector partitions assigned") }, "\(process.log)")
        process.signal(SIGTERM)
        #expect(process.wait(timeout: 30) == 0, "\(process.log)")
        #expect(process.log.contains("projected 0 messages"))
    }

    /// A long-running command whose metrics port is taken says so in one line and exits 1.
    @Test func aTakenMetricsPortIsOneErrorLine() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let port = freePort()
        let first = try BTEProcess(
            [
                "ingest", "--brokers", topics.brokers, "--database-url", db.ingestURL, "--topic-prefix", topics.prefix,
                "--group", TestEnvironment.uniqueName("ingest-"), "--session-timeout-ms", "6000", "--metrics-port",
                String(port),
            ])
        defer { if first.process.isRunning { first.signal(SIGKILL) } }
        #expect(eventually(timeout: 30) { httpGet(port: port, path: "/healthz")?.status == 200 }, "\(first.log)")
        let second = try BTEProcess(
            [
                "ingest", "--brokers", topics.brokers, "--database-url", db.ingestURL, "--topic-prefix", topics.prefix,
                "--group", TestEnvironment.uniqueName("ingest-"), "--session-timeout-ms", "6000", "--metrics-port",
                String(port),
            ],
            environment: ["BTE_LOG_LEVEL": "critical"])
        #expect(second.wait(timeout: 30) == 1, "\(second.log)")
        #expect(second.log.hasPrefix("bte: error: ") && second.log.filter { $0 == "\n" }.count == 1, "\(second.log)")
        first.signal(SIGTERM)
        #expect(first.wait(timeout: 30) == 0, "\(first.log)")
    }
}

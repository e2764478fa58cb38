import BTEDomain
import BTETestSupport
import Foundation
import Kafka
import Testing

/// W3C trace context end to end against the real servers: a producer's `traceparent` header
/// (on the Kafka message, or on an API request) reaches the records the event causes, as a child
/// context: the same trace id and flags, a new parent id. Without `--trace-context` nothing is
/// carried, and an event without a header causes records without one.
@Suite(.serialized) struct TraceContextTests {
    static let workspace = fixtureUUID(1, prefix: "7c7c7c7c")
    static let traced = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    static let tracedBusiness = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"

    static func interaction(_ topics: TestTopics, user: String, n: Int, traceparent: String?) -> KafkaOutgoingMessage {
        let value = """
            {"event_id":"\(fixtureUUID(n, prefix: "7e7e7e7e"))","timestamp":"2026-03-02T10:0\(n):00Z",
             "event_type":"tap","user_id":"\(user)","session_id":"s-\(user)","workspace_id":"\(workspace)"}
            """
        return KafkaOutgoingMessage(
            topic: topics.prefix + "bte.interaction-events.v1", key: Array(user.utf8), value: Array(value.utf8),
            headers: traceparent.map { [KafkaHeader(name: "traceparent", value: Array($0.utf8))] } ?? [])
    }

    /// The trace context a message carries, if any.
    static func context(_ message: KafkaMessage) -> TraceParent? {
        message.header("traceparent").flatMap { TraceParent($0) }
    }

    @Test func theProjectorCarriesAProducersTraceToTheRecordsItCauses() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        try ReplayIdentityTests.createOutputTopics(topics)
        let business = """
            {"record_type":"business_event","event_id":"\(fixtureUUID(9, prefix: "b7b7b7b7"))",
             "event_type":"recommendation.given","entity_type":"recommendation",
             "entity_id":"\(fixtureUUID(9, prefix: "d7d7d7d7"))",
             "workspace_id":"\(Self.workspace)","sub_vertical_id":"\(fixtureUUID(1, prefix: "5c5c5c5c"))",
             "actor_user_id":"\(fixtureUUID(3, prefix: "aaaa7777"))","timestamp":"2026-03-02T09:00:00Z",
             "metadata":{"action_type":"call","expected_value":10}}
            """
        try topics.produce([
            Self.interaction(topics, user: "traced-user", n: 1, traceparent: Self.traced),
            Self.interaction(topics, user: "plain-user", n: 2, traceparent: nil),
            KafkaOutgoingMessage(
                topic: topics.prefix + "bte.business-events.v1", key: Array(Self.workspace.utf8),
                value: Array(business.utf8),
                headers: [KafkaHeader(name: "traceparent", value: Array(Self.tracedBusiness.utf8))]),
        ])
        let ingestGroup = TestEnvironment.uniqueName("ingest-")
        _ = try ingestUntilIdle(db, topics, group: ingestGroup)
        let env = ["BTE_KAFKA_BROKERS": topics.brokers, "BTE_READER_DATABASE_URL": db.readerURL]
        let project = ["project", "--until-idle", "--topic-prefix", topics.prefix, "--ingest-group", ingestGroup]
        try runBTE(project + ["--group", TestEnvironment.uniqueName("projector-"), "--trace-context"], env)

        let vectors = try topics.readAll(topics.prefix + "bte.behavioral-vectors.v1", headers: ["traceparent"])
        let tracedVector = try #require(
            vectors.first { String(decoding: $0.key ?? [], as: UTF8.self).hasSuffix("/traced-user") })
        let context = try #require(Self.context(tracedVector), "\(tracedVector.headers)")
        let producer = try #require(TraceParent(Array(Self.traced.utf8)))
        #expect(context.traceID == producer.traceID && context.flags == 1)
        #expect(context.parentID != producer.parentID)
        let plainVector = try #require(
            vectors.first { String(decoding: $0.key ?? [], as: UTF8.self).hasSuffix("/plain-user") })
        #expect(plainVector.headers.isEmpty)
        // The workspace's signals as of the recommendation (missed_opportunity_count and
        // execution_gap, emitted once a workspace holds a given) carry its trace, flags 00.
        let signals = try topics.readAll(topics.prefix + "bte.signals.v1", headers: ["traceparent"])
        #expect(!signals.isEmpty)
        let business0 = try #require(TraceParent(Array(Self.tracedBusiness.utf8)))
        for signal in signals {
            let carried = Self.context(signal)
            #expect(carried?.traceID == business0.traceID && carried?.flags == 0, "\(signal.headers)")
        }
        // One span per event: every record of the business event names the same parent.
        #expect(Set(signals.compactMap { Self.context($0)?.parentID }).count == 1)

        // Off (the default): the same records, no headers.
        try runBTE(project + ["--group", TestEnvironment.uniqueName("projector-off-")], env)
        let again = try topics.readAll(topics.prefix + "bte.behavioral-vectors.v1", headers: ["traceparent"])
        #expect(again.count == 2 * vectors.count)
        let untraced = again.filter { $0.headers.isEmpty }.count
        // Run 1: the plain user's vector; run 2: both.
        #expect(untraced == 1 + vectors.count, "\(again.map(\.headers))")
    }

    @Test func anAPIRequestsTraceparentTravelsWithItsRecords() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let key = try APITests.createKey(db, scope: "write", workspace: Self.workspace)
        let port = freePort()
        let server = try APITests.serve(db, topics, port: port)
        defer {
            server.signal(SIGTERM)
            _ = server.wait(timeout: 30)
        }
        let event = """
            {"events":[{"record_type":"interaction_event","event_id":"\(fixtureUUID(5, prefix: "7e7e7e7e"))",
             "timestamp":"2026-03-02T10:00:00Z","event_type":"tap","user_id":"api-user","session_id":"s"}]}
            """
        let reply = APITests.post(port, "/v1/events", key: key, event, headers: ["traceparent": Self.traced])
        #expect(reply.status == 200, "\(reply)")
        let stored = try topics.readAll(topics.prefix + "bte.interaction-events.v1", headers: ["traceparent"])
        #expect(stored.count == 1)
        #expect(stored.first?.header("traceparent") == Array(Self.traced.utf8))
        // An invalid header is no trace context: the record goes without one.
        let invalid = APITests.post(port, "/v1/events", key: key, event, headers: ["traceparent": "00-zz"])
        #expect(invalid.status == 200)
        let both = try topics.readAll(topics.prefix + "bte.interaction-events.v1", headers: ["traceparent"])
        #expect(both.count == 2 && both.filter { $0.headers.isEmpty }.count == 1)
    }

    /// With a collector configured, the projector exports spans: one per traced event, a child
    /// of the producer's span, whose id the event's outputs name as their parent; one per batch,
    /// linked to the events, with a child span per stage. Received by a real OTLP/HTTP receiver.
    @Test func ingestAndTheProjectorExportSpansThatTheOutputsName() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        try ReplayIdentityTests.createOutputTopics(topics)
        try topics.produce([Self.interaction(topics, user: "traced-user", n: 1, traceparent: Self.traced)])
        let ingestGroup = TestEnvironment.uniqueName("ingest-")

        let port = freePort()
        let spansFile = FileManager.default.temporaryDirectory.appendingPathComponent(
            TestEnvironment.uniqueName("spans-") + ".ndjson")
        defer { try? FileManager.default.removeItem(at: spansFile) }
        // Spawned directly, its output to /dev/null: it must hold no end of the test's pipes.
        let script: String = TestEnvironment.packageRoot.appendingPathComponent("scripts/otlp-receiver.py").path
        let receiver = try #require(
            spawn(["/usr/bin/env", "python3", script, String(port), spansFile.path], output: "/dev/null"))
        defer {
            kill(receiver, SIGKILL)
            _ = waitForExit(receiver)
        }
        #expect(eventually(timeout: 10) { httpGet(port: port, path: "/")?.status != nil })

        try runBTE(
            [
                "ingest", "--until-idle", "--topic-prefix", topics.prefix, "--group", ingestGroup,
                "--otlp-endpoint", "http://127.0.0.1:\(port)",
            ], ["BTE_KAFKA_BROKERS": topics.brokers, "BTE_DATABASE_URL": db.ingestURL])
        try runBTE(
            [
                "project", "--until-idle", "--topic-prefix", topics.prefix, "--ingest-group", ingestGroup, "--group",
                TestEnvironment.uniqueName("projector-"), "--trace-context", "--otlp-endpoint",
                "http://127.0.0.1:\(port)",
            ], ["BTE_KAFKA_BROKERS": topics.brokers, "BTE_READER_DATABASE_URL": db.readerURL])
        func spans() -> [[String: Any]] {
            ((try? String(contentsOf: spansFile, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }
        #expect(eventually(timeout: 15) { spans().contains { $0["name"] as? String == "bte.project.batch" } })
        let all = spans()
        let events = all.filter { $0["name"] as? String == "bte.project.event" }
        #expect(events.count == 1, "\(all)")
        let event = try #require(events.first)
        // The producer's trace and span: 00-4bf92f35…-00f067aa0ba902b7-01.
        #expect(event["trace_id"] as? String == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(event["parent_span_id"] as? String == "00f067aa0ba902b7")
        let attributes = event["attributes"] as? [String: Any] ?? [:]
        #expect(attributes["messaging.destination.name"] as? String == topics.prefix + "bte.interaction-events.v1")
        #expect(attributes["messaging.kafka.offset"] as? Int == 0)
        // The vector names the event's span as its parent.
        let vectors = try topics.readAll(topics.prefix + "bte.behavioral-vectors.v1", headers: ["traceparent"])
        let context = try #require(vectors.first.flatMap { Self.context($0) })
        #expect(context.parentID.map { String(format: "%02x", $0) }.joined() == event["span_id"] as? String)
        // The batch: linked to the event, one child per stage.
        let batch = try #require(all.first { $0["name"] as? String == "bte.project.batch" })
        let links = batch["links"] as? [[String: Any]] ?? []
        #expect(links.map { $0["span_id"] as? String } == [event["span_id"] as? String])
        let stages = all.filter { $0["parent_span_id"] as? String == batch["span_id"] as? String }
            .compactMap { $0["name"] as? String }
        for stage in ["durable", "rows", "compute", "encode", "publish", "commit"] {
            #expect(stages.contains("bte.project.\(stage)"), "\(stages)")
        }

        // Ingest: its own child of the producer's span, for the same message, and its batch.
        let stored = all.filter { $0["name"] as? String == "bte.ingest.event" }
        #expect(stored.count == 1, "\(all)")
        let ingested = try #require(stored.first)
        #expect(ingested["trace_id"] as? String == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(ingested["parent_span_id"] as? String == "00f067aa0ba902b7")
        #expect(ingested["span_id"] as? String != event["span_id"] as? String)
        let ingestedAt = ingested["attributes"] as? [String: Any] ?? [:]
        #expect(ingestedAt["messaging.destination.name"] as? String == topics.prefix + "bte.interaction-events.v1")
        #expect(ingestedAt["messaging.kafka.offset"] as? Int == 0)
        let ingestBatch = try #require(all.first { $0["name"] as? String == "bte.ingest.batch" })
        #expect(ingestBatch["trace_id"] as? String != "4bf92f3577b34da6a3ce929d0e0e4736")
        let ingestLinks = ingestBatch["links"] as? [[String: Any]] ?? []
        #expect(ingestLinks.map { $0["span_id"] as? String } == [ingested["span_id"] as? String])
        #expect((ingestBatch["attributes"] as? [String: Any])?["messaging.batch.message_count"] as? Int == 1)
        let ingestStages = all.filter { $0["parent_span_id"] as? String == ingestBatch["span_id"] as? String }
            .compactMap { $0["name"] as? String }
        #expect(ingestStages == ["bte.ingest.queued", "bte.ingest.validate", "bte.ingest.commit"], "\(ingestStages)")
        // The event is stored before the projector reads it.
        let storedEnd = try #require(ingested["end_ns"] as? Int)
        let projectedStart = try #require(event["start_ns"] as? Int)
        #expect(storedEnd <= projectedStart)
    }
}

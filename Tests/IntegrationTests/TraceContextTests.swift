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
}

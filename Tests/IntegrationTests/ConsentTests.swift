import BTEDomain
import BTETestSupport
import Foundation
import Kafka
import Testing

/// Consent to a behavioral profile and to per-person analytics, through ingest, the projector,
/// the sink and the API against the real servers.
@Suite(.serialized) struct ConsentTests {
    static let workspace = fixtureUUID(1, prefix: "c0c0c0c0")
    static let subVertical = fixtureUUID(1, prefix: "5c5c5c5c")
    static let person = fixtureUUID(1, prefix: "c1c1c1c1")
    static let other = fixtureUUID(2, prefix: "c2c2c2c2")

    static func tap(_ prefix: String, _ n: Int, _ user: String, at time: String) -> KafkaOutgoingMessage {
        let value = """
            {"event_id":"\(fixtureUUID(n, prefix: "1c1c1c1c"))","timestamp":"2026-03-02T\(time)Z",
             "event_type":"tap","user_id":"\(user)","session_id":"s","workspace_id":"\(workspace)"}
            """
        return KafkaOutgoingMessage(
            topic: prefix + "bte.interaction-events.v1", key: Array(user.utf8), value: Array(value.utf8))
    }

    static func consent(_ prefix: String, _ n: Int, _ type: String, _ purpose: String, at time: String)
        -> KafkaOutgoingMessage
    {
        let value = """
            {"record_type":"business_event","event_id":"\(fixtureUUID(n, prefix: "bcbcbcbc"))",
             "event_type":"consent.\(type)","entity_type":"consent","entity_id":"\(fixtureUUID(n, prefix: "cdcdcdcd"))",
             "workspace_id":"\(workspace)","sub_vertical_id":"\(subVertical)","actor_user_id":"\(person)",
             "timestamp":"2026-03-02T\(time)Z","metadata":{"purpose":"\(purpose)"}}
            """
        return KafkaOutgoingMessage(
            topic: prefix + "bte.business-events.v1", key: Array(workspace.utf8), value: Array(value.utf8))
    }

    /// The as_of of each record on the vectors topic under the person's key, in order; a
    /// tombstone is "-".
    static func personsVectors(_ topics: TestTopics) throws -> [String] {
        try topics.readAll(topics.prefix + "bte.behavioral-vectors.v1").filter {
            $0.key.map { String(decoding: $0, as: UTF8.self) } == "\(workspace)/\(person)"
        }.map { message in
            guard let value = message.value, case .string(let asOf)? = try? JSONParser.parse(value)["as_of"] else {
                return "-"
            }
            return asOf
        }
    }

    @Test func aWithdrawnProfileEndsTheVectorsUntilConsentIsGrantedAgain() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        try ReplayIdentityTests.createOutputTopics(topics)
        try createOutputTopics(topics)
        let prefix = topics.prefix
        // The person taps at 10:00, 10:01 and 10:02 and withdraws consent to a profile at
        // 10:01:30 (the withdrawal is produced first: the order of the logs doesn't matter);
        // consent to analytics is withdrawn too, at 10:00:30. The other user taps at 10:00.
        try topics.produce([
            Self.consent(prefix, 1, "withdrawn", "behavioral_profile", at: "10:01:30"),
            Self.consent(prefix, 2, "withdrawn", "analytics", at: "10:00:30"),
            Self.tap(prefix, 1, Self.person, at: "10:00:00"), Self.tap(prefix, 2, Self.person, at: "10:01:00"),
            Self.tap(prefix, 3, Self.person, at: "10:02:00"), Self.tap(prefix, 4, Self.other, at: "10:00:00"),
        ])
        let ingestGroup = TestEnvironment.uniqueName("ingest-")
        #expect(
            try ingestUntilIdle(db, topics, group: ingestGroup).stored == [.interactionEvents: 4, .businessEvents: 2])
        let env = ["BTE_KAFKA_BROKERS": topics.brokers, "BTE_READER_DATABASE_URL": db.readerURL]
        let project = [
            "project", "--until-idle", "--topic-prefix", prefix, "--ingest-group", ingestGroup, "--group",
            TestEnvironment.uniqueName("projector-"),
        ]
        _ = try runBTE(project, env)
        // Vectors as of 10:00 and 10:01 (before the withdrawal), none as of 10:02, then the
        // tombstone that ends the profile.
        #expect(
            try Self.personsVectors(topics) == ["2026-03-02T10:00:00.000000Z", "2026-03-02T10:01:00.000000Z", "-"])
        _ = try sinkUntilIdle(db, topics)
        let stored = "SELECT count(*) FROM bte.behavioral_vectors WHERE user_id = $1"
        #expect(try db.count(stored.replacingOccurrences(of: "$1", with: "'\(Self.person)'")) == 0)
        #expect(try db.count(stored.replacingOccurrences(of: "$1", with: "'\(Self.other)'")) == 1)
        // The history of what was computed with consent stays; nothing was dead-lettered.
        #expect(try db.count("SELECT count(*) FROM bte.bv_history WHERE user_id = '\(Self.person)'") == 2)

        let reader = try APITests.createKey(db, scope: "read", rate: 10_000, workspace: Self.workspace)
        let port = freePort()
        let server = try APITests.serve(db, topics, port: port)
        defer { server.signal(SIGKILL) }
        #expect(ReadAPITests.get(port, "/api/v1/behavioral-vectors/\(Self.person)", key: reader).status == 404)
        #expect(ReadAPITests.get(port, "/api/v1/behavioral-vectors/\(Self.other)", key: reader).status == 200)

        // Granted again at 10:03, a tap at 10:04: the profile is back, and stored again.
        try topics.produce([
            Self.consent(prefix, 3, "granted", "behavioral_profile", at: "10:03:00"),
            Self.tap(prefix, 5, Self.person, at: "10:04:00"),
        ])
        _ = try ingestUntilIdle(db, topics, group: ingestGroup)
        _ = try runBTE(project, env)
        #expect(
            try Self.personsVectors(topics) == [
                "2026-03-02T10:00:00.000000Z", "2026-03-02T10:01:00.000000Z", "-", "2026-03-02T10:04:00.000000Z",
            ])
        _ = try sinkUntilIdle(db, topics)
        #expect(ReadAPITests.get(port, "/api/v1/behavioral-vectors/\(Self.person)", key: reader).status == 200)
        // Per-person analytics stay off for the person (withdrawn at 10:00:30, never granted
        // again); the other user's engagement is served.
        #expect(ReadAPITests.get(port, "/api/v1/analytics/engagement/\(Self.person)", key: reader).status == 404)
        #expect(ReadAPITests.get(port, "/api/v1/analytics/engagement/\(Self.other)", key: reader).status == 200)

        // A sweep as of 10:02:30 (withdrawn then) computes no vector for the person, only the
        // other user's; as of 10:05, both.
        for (asOf, vectors) in [("2026-03-02T10:02:30Z", 1), ("2026-03-02T10:05:00Z", 2)] {
            let sweep = try runBTE(["sweep", "--as-of", asOf, "--topic-prefix", prefix], env)
            #expect(sweep.contains(", \(vectors) behavioral vectors"), "\(sweep)")
        }
    }
}

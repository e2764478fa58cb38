import BTEDomain
import BTEProjection
import BTETestSupport
import BTEWorker
import Foundation
import Kafka
import Testing

/// A user is (workspace_id, user_id): one user id collected by two workspaces is two people in
/// every computation, topic, table and read, from collection through ingest, the projector and
/// the sink.
@Suite(.serialized) struct TenancyTests {
    static let a = APITests.workspace
    static let b = APITests.other

    static func object(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
    }

    @Test func oneUserIDInTwoWorkspacesIsTwoPeopleEverywhere() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        try createOutputTopics(topics)
        let writeA = try APITests.createKey(db, scope: "write", rate: 10_000)
        let writeB = try APITests.createKey(db, scope: "write", rate: 10_000, workspace: Self.b)
        let readA = try APITests.createKey(db, scope: "read", rate: 10_000)
        let readB = try APITests.createKey(db, scope: "read", rate: 10_000, workspace: Self.b)
        let readDefault = try APITests.createKey(db, scope: "read", rate: 10_000, workspace: "default")
        let port = freePort()
        let server = try APITests.serve(db, topics, port: port)
        defer { server.signal(SIGKILL) }

        // u-shared: 3 taps collected by A's key, 7 by B's, and 1 sent straight to Kafka by a
        // producer that names no workspace (the default workspace's u-shared).
        let body = #"{"user_id":"u-shared","session_id":"s-1","event_type":"tap"}"#
        for (key, count) in [(writeA, 3), (writeB, 7)] {
            for n in 0..<count {
                let reply = APITests.post(
                    port, "/api/v1/interactions/log", key: key, body, headers: ["Idempotency-Key": "tap-\(n)"])
                #expect(reply.status == 200, "\(reply)")
            }
        }
        let stamp = Timestamp(microseconds: Int64(Date().timeIntervalSince1970 * 1_000_000) - 60_000_000).rfc3339
        try topics.produce([
            KafkaOutgoingMessage(
                topic: topics.prefix + "bte.interaction-events.v1", key: Array("u-shared".utf8),
                value: Array(
                    """
                    {"event_id":"\(fixtureUUID(1, prefix: "77777777"))","timestamp":"\(stamp)","event_type":"tap",
                     "user_id":"u-shared","session_id":"s-9"}
                    """.utf8))
        ])
        let ingestGroup = TestEnvironment.uniqueName("ingest-")
        let ingested = try ingestUntilIdle(db, topics, group: ingestGroup)
        #expect(ingested.stored.values.reduce(0, +) == 11, "\(ingested)")
        // The same Idempotency-Key in two workspaces names two events: nothing was a duplicate.
        #expect(ingested.duplicates.values.reduce(0, +) == 0)

        // Computed on request: each key counts its own workspace's person only.
        for (key, workspace, total) in [
            (readA, Self.a, 3), (readB, Self.b, 7), (readDefault, UserKey.defaultWorkspace, 1),
        ] {
            let reply = APITests.post(port, "/api/v1/behavioral-vectors/compute", key: key, #"{"user_id":"u-shared"}"#)
            #expect(reply.status == 200, "\(reply)")
            let vector = Self.object(reply.body)
            #expect(vector["total_interactions"] as? Int == total, "\(reply.body)")
            #expect(vector["workspace_id"] as? String == workspace)
        }

        // The projector publishes one vector per person, keyed by workspace and user.
        var configuration = Projector.Configuration(brokers: topics.brokers, readerURL: db.readerURL)
        configuration.topicPrefix = topics.prefix
        configuration.group = TestEnvironment.uniqueName("projector-")
        configuration.ingestGroup = ingestGroup
        configuration.untilIdle = true
        configuration.sessionTimeoutMilliseconds = 6_000
        _ = try Projector(configuration: configuration, logger: TestEnvironment.logger).run(stop: StopSignal())
        var newest: [String: [String: Any]] = [:]
        for message in try topics.readAll(topics.prefix + "bte.behavioral-vectors.v1") {
            let key = String(decoding: message.key ?? [], as: UTF8.self)
            let vector = Self.object(String(decoding: message.value ?? [], as: UTF8.self))
            if (vector["as_of"] as? String ?? "") >= (newest[key]?["as_of"] as? String ?? "") { newest[key] = vector }
        }
        #expect(
            Set(newest.keys) == [
                "\(Self.a)/u-shared", "\(Self.b)/u-shared", "\(UserKey.defaultWorkspace)/u-shared",
            ])
        #expect(newest["\(Self.a)/u-shared"]?["total_interactions"] as? Int == 3)
        #expect(newest["\(Self.b)/u-shared"]?["total_interactions"] as? Int == 7)
        #expect(newest["\(UserKey.defaultWorkspace)/u-shared"]?["total_interactions"] as? Int == 1)
        #expect(newest["\(Self.b)/u-shared"]?["workspace_id"] as? String == Self.b)

        // The sink keeps them apart; the read endpoints answer per workspace.
        let sunk = try sinkUntilIdle(db, topics)
        #expect(sunk.rejected.isEmpty, "\(sunk)")
        #expect(try db.count("SELECT count(*) FROM bte.behavioral_vectors WHERE user_id = 'u-shared'") == 3)
        for (key, total) in [(readA, 3), (readB, 7), (readDefault, 1)] {
            let vector = ReadAPITests.get(port, "/api/v1/behavioral-vectors/u-shared", key: key)
            #expect(Self.object(vector.body)["total_interactions"] as? Int == total, "\(vector)")
            // One session each (A's and B's taps share s-1 but are two people), so the interactions
            // per session are the person's own total: 3, 7 and 1.
            let engagement = ReadAPITests.get(port, "/api/v1/analytics/engagement/u-shared", key: key)
            #expect(engagement.status == 200, "\(engagement)")
            let body = Self.object(engagement.body)
            #expect(body["total_sessions"] as? Int == 1, "\(engagement.body)")
            #expect(body["avg_interactions_per_session"] as? Int == total, "\(engagement.body)")
            let days = body["history"] as? [[String: Any]] ?? []
            #expect(days.last?["avg_interactions_per_session"] as? Int == total, "\(engagement.body)")
        }
        // Each workspace's history holds its own person's vectors: every interaction is an as_of
        // point of its person, so 3, 7 and 1 rows, and none names another workspace.
        for (workspace, rows) in [(Self.a, 3), (Self.b, 7), (UserKey.defaultWorkspace, 1)] {
            #expect(
                try db.count(
                    "SELECT count(*) FROM bte.bv_history WHERE workspace_id = '\(workspace)' AND user_id = 'u-shared'")
                    == rows)
            #expect(
                try db.count(
                    """
                    SELECT count(*) FROM bte.bv_history WHERE workspace_id = '\(workspace)'
                      AND record::jsonb->>'workspace_id' <> '\(workspace)'
                    """) == 0)
        }
    }
}

import BTEDomain
import BTEStore
import BTETestSupport
import Foundation
import Kafka
import Testing

/// Which other workspaces' successes a row counts is fixed by the log: those stored before it,
/// whatever the projector had read when it processed the row.
@Suite(.serialized) struct PeerOrderTests {
    static let a = fixtureUUID(1, prefix: "a0a0a0a0")
    static let b = fixtureUUID(2, prefix: "b0b0b0b0")
    static let sub = fixtureUUID(3, prefix: "5b5b5b5b")
    static let actor = fixtureUUID(4, prefix: "aaaaaaaa")

    static func event(
        _ topics: TestTopics, _ n: Int, _ ws: String, partition: Int32, _ type: String, _ entity: Int, _ at: String,
        _ metadata: String = "{}"
    ) -> KafkaOutgoingMessage {
        let value = """
            {"record_type":"business_event","event_id":"\(fixtureUUID(n, prefix: "e7e7e7e7"))","event_type":"\(type)",
             "entity_type":"\(type.split(separator: ".")[0])","entity_id":"\(fixtureUUID(entity, prefix: "eeeeeeee"))",
             "workspace_id":"\(ws)","sub_vertical_id":"\(sub)","actor_user_id":"\(actor)","timestamp":"\(at)",
             "metadata":\(metadata)}
            """
        return KafkaOutgoingMessage(
            topic: topics.prefix + "bte.business-events.v1", key: Array(ws.utf8), value: Array(value.utf8),
            partition: partition)
    }

    /// A's next best action as of each of its rows: the evidence's peer successes, nil for none.
    static func nextBestActions(_ topics: TestTopics) throws -> [String: String?] {
        var byAsOf: [String: String?] = [:]
        for message in try topics.readAll(topics.prefix + "bte.signals.v1") {
            let json = String(decoding: message.value ?? [], as: UTF8.self)
            guard json.contains(a),
                let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
                let asOf = object["as_of"] as? String
            else { continue }
            byAsOf.updateValue(nil, forKey: asOf)
        }
        for message in try topics.readAll(topics.prefix + "bte.insights.v1") {
            let json = String(decoding: message.value ?? [], as: UTF8.self)
            guard json.contains(a), json.contains(#""insight_type":"next_best_action""#),
                let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
                let asOf = object["as_of"] as? String, let evidence = object["evidence"] as? [String: Any]
            else { continue }
            byAsOf[asOf] = "\(evidence["action_type"] ?? "") \(evidence["peer_successes"] ?? "")"
        }
        return byAsOf
    }

    @Test func aRowCountsOnlyTheSuccessesStoredBeforeIt() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        try ReplayIdentityTests.createOutputTopics(topics)
        let ingestGroup = TestEnvironment.uniqueName("ingest-")
        // Three transactions of ingest, in this order:
        // 1. A (partition 0): given an email at 03:00 (a row with signals; email is A's own type,
        //    so call is what A could be told to try).
        try topics.produce([
            Self.event(
                topics, 1, Self.a, partition: 0, "recommendation.given", 1, "2026-05-01T03:00:00Z",
                #"{"action_type":"email"}"#)
        ])
        _ = try ingestUntilIdle(db, topics, group: ingestGroup)
        // 2. B (partition 1): given a call at 01:00, acted with success at 02:00: before A's
        //    given in time, stored after it.
        try topics.produce([
            Self.event(
                topics, 2, Self.b, partition: 1, "recommendation.given", 2, "2026-05-01T01:00:00Z",
                #"{"action_type":"call"}"#),
            Self.event(
                topics, 3, Self.b, partition: 1, "recommendation.acted", 2, "2026-05-01T02:00:00Z",
                #"{"outcome":"success"}"#),
        ])
        _ = try ingestUntilIdle(db, topics, group: ingestGroup)
        // 3. A: another email given at 04:00.
        try topics.produce([
            Self.event(
                topics, 4, Self.a, partition: 0, "recommendation.given", 4, "2026-05-01T04:00:00Z",
                #"{"action_type":"email"}"#)
        ])
        _ = try ingestUntilIdle(db, topics, group: ingestGroup)
        // One success commit, recorded with what the group had stored: A's first given
        // (partition 0: next offset 1) and B's two events (partition 1: 2).
        let commits = try db.admin().execute(
            "SELECT partitions, next_offsets, baseline FROM bte.success_commits WHERE ingest_group = $1", [ingestGroup]
        ).rows
        #expect(commits.map { $0.map { $0 ?? "" } } == [["{0,1}", "{1,2}", "f"]])

        // The projector reads all of it at once, then another group one message a batch: A's
        // given at 03:00 was stored before B's success, so it counts none; the one at 04:00
        // counts it: "call", 1 success. (Before the peer order, a projector that read B's success
        // before processing A's first given counted it there too.)
        let env = ["BTE_KAFKA_BROKERS": topics.brokers, "BTE_READER_DATABASE_URL": db.readerURL]
        let common = ["project", "--until-idle", "--topic-prefix", topics.prefix, "--ingest-group", ingestGroup]
        _ = try runBTE(common + ["--group", TestEnvironment.uniqueName("projector-a-")], env)
        let expected: [String: String?] = [
            "2026-05-01T03:00:00.000000Z": String?.none, "2026-05-01T04:00:00.000000Z": "call 1",
        ]
        let got = try Self.nextBestActions(topics)
        #expect(got == expected, "\(got)")
        let first = try ReplayIdentityTests.published(topics)
        _ = try runBTE(
            common + ["--group", TestEnvironment.uniqueName("projector-b-"), "--max-batch-messages", "1"], env)
        let both = try ReplayIdentityTests.published(topics)
        #expect(Set(both.keys) == Set(first.keys))
        #expect(both.values.allSatisfy { Set($0).count == 1 })
        let again = try Self.nextBestActions(topics)
        #expect(again == expected, "\(again)")
    }
}

import BTEDomain
import BTETestSupport
import Foundation
import Kafka
import Testing

/// Replays in separate processes publish the same bytes: every output is a function of the
/// entity's own events and as_of, never of hash order or of what else shared a batch.
@Suite(.serialized) struct ReplayIdentityTests {
    static let subVertical = "33333333-3333-4333-8333-333333333333"
    static let actor = "aaaaaaaa-0000-4000-8000-00000000000a"
    static let outputs = ["bte.signals.v1", "bte.behavioral-vectors.v1", "bte.insights.v1"]

    static func workspace(_ n: Int) -> String { fixtureUUID(n, prefix: "11111111") }

    /// Workspaces whose events span four months (so one batch's histories reach far beyond a
    /// late workspace's own window) and users with sessions of 0.1, 0.2, 0.3 and 0.7 minutes,
    /// whose mean differs in its last bits depending on the order of addition.
    static func inputs(_ topics: TestTopics) -> [KafkaOutgoingMessage] {
        var messages: [KafkaOutgoingMessage] = []
        var id = 0
        func business(_ ws: String, _ type: String, _ entity: String, _ at: String, _ metadata: String = "{}") {
            id += 1
            let value = """
                {"record_type":"business_event","event_id":"\(fixtureUUID(id))","event_type":"\(type)",
                 "entity_type":"\(type.split(separator: ".")[0])","entity_id":"\(entity)","workspace_id":"\(ws)",
                 "sub_vertical_id":"\(subVertical)","actor_user_id":"\(actor)",
                 "timestamp":"\(at)","metadata":\(metadata)}
                """
            messages.append(
                KafkaOutgoingMessage(
                    topic: topics.prefix + "bte.business-events.v1", key: Array(ws.utf8), value: Array(value.utf8)))
        }
        for n in 1...8 {
            let ws = workspace(n)
            // Months apart per workspace: workspace 1 ends in January, workspace 8 in April.
            let month = String(format: "%02d", 1 + (n - 1) / 2)
            for day in [2, 9, 16, 23] {
                let at = "2026-\(month)-\(String(format: "%02d", day))T10:00:00Z"
                let entity = fixtureUUID(n * 100 + day, prefix: "eeeeeeee")
                business(ws, "recommendation.given", entity, at, #"{"action_type":"upsell","expected_value":10}"#)
                business(ws, "deal.created", fixtureUUID(n * 100 + day, prefix: "dddddddd"), at)
                business(
                    ws, "order.created", fixtureUUID(n * 100 + day, prefix: "cccccccc"), at,
                    #"{"customer_id":"c-1","amount":5}"#)
            }
            // Earlier months of the same workspace: outside its own windows, inside an early
            // workspace's span when they share a batch.
            for month in 1..<(1 + (n - 1) / 2) {
                business(
                    ws, "recommendation.given", fixtureUUID(n * 1000 + month, prefix: "eeeeeeee"),
                    "2026-\(String(format: "%02d", month))-05T10:00:00Z", #"{"action_type":"upsell"}"#)
            }
        }
        // Seconds per session: 6, 12, 18, 42 → 0.1, 0.2, 0.3, 0.7 minutes.
        var iid = 0
        for u in 1...12 {
            let user = "user-\(u)"
            for (s, seconds) in [6, 12, 18, 42].enumerated() {
                for at in [0, seconds] {
                    iid += 1
                    let stamp = String(format: "2026-03-%02dT%02d:00:%02dZ", 1 + s, 8 + u % 10, at)
                    let value = """
                        {"event_id":"\(fixtureUUID(iid, prefix: "99999999"))","timestamp":"\(stamp)","event_type":"tap",
                         "user_id":"\(user)","session_id":"session-\(u)-\(s)","capsule_type":"task","duration_ms":300}
                        """
                    messages.append(
                        KafkaOutgoingMessage(
                            topic: topics.prefix + "bte.interaction-events.v1", key: Array(user.utf8),
                            value: Array(value.utf8)))
                }
            }
        }
        return messages
    }

    static func createOutputTopics(_ topics: TestTopics) throws {
        let admin = try KafkaAdmin(configuration: KafkaClientConfiguration(brokers: topics.brokers))
        _ = try admin.createTopics(
            outputs.map { KafkaNewTopic(name: topics.prefix + $0, partitions: 3, replicationFactor: 1) })
    }

    /// Every output record by id, with each copy's bytes.
    static func published(_ topics: TestTopics) throws -> [String: [[UInt8]]] {
        var byID: [String: [[UInt8]]] = [:]
        for topic in outputs {
            for message in try topics.readAll(topics.prefix + topic) {
                guard let value = message.value,
                    let object = try JSONSerialization.jsonObject(with: Data(value)) as? [String: Any]
                else { continue }
                byID["\(topic) \(object["id"] as? String ?? "?")", default: []].append(value)
            }
        }
        return byID
    }

    /// Every output record as "topic bytes", in the order read.
    static func records(_ topics: TestTopics) throws -> [String] {
        try outputs.flatMap { topic in
            try topics.readAll(topics.prefix + topic).map {
                "\(topic) " + String(decoding: $0.value ?? [], as: UTF8.self)
            }
        }
    }

    @Test func sweepsInTwoProcessesPublishIdenticalBytes() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        try Self.createOutputTopics(topics)
        try topics.produce(Self.inputs(topics))
        _ = try ingestUntilIdle(db, topics, group: TestEnvironment.uniqueName("ingest-"))

        let env = ["BTE_KAFKA_BROKERS": topics.brokers, "BTE_READER_DATABASE_URL": db.readerURL]
        for _ in 0..<2 {
            _ = try runBTE(["sweep", "--as-of", "2026-03-31T00:00:00Z", "--topic-prefix", topics.prefix], env)
        }

        let byID = try Self.published(topics)
        // March: users 1–12 each have a vector; workspaces 5–8 have events in the window.
        #expect(byID.keys.filter { $0.hasPrefix("bte.behavioral-vectors.v1 ") }.count == 12)
        #expect(byID.keys.filter { $0.hasPrefix("bte.signals.v1 ") }.count > 0)
        #expect(byID.keys.filter { $0.hasPrefix("bte.insights.v1 ") }.count > 0)
        for (id, copies) in byID {
            #expect(copies.count == 2, "\(id) published \(copies.count) times")
            #expect(Set(copies).count == 1, "\(id) differs between the two sweeps")
        }
    }

    @Test func projectionsByTwoGroupsWithDifferentBatchesPublishIdenticalBytes() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        try Self.createOutputTopics(topics)
        try topics.produce(Self.inputs(topics))
        let ingestGroup = TestEnvironment.uniqueName("ingest-")
        _ = try ingestUntilIdle(db, topics, group: ingestGroup)

        let env = [
            "BTE_KAFKA_BROKERS": topics.brokers, "BTE_READER_DATABASE_URL": db.readerURL,
            "BTE_KAFKA_SESSION_TIMEOUT_MS": "6000",
        ]
        let common = ["project", "--until-idle", "--topic-prefix", topics.prefix, "--ingest-group", ingestGroup]
        // One group sees one message per batch (each workspace alone); the other whole runs of
        // messages (every workspace of a partition together). as_of points come from the log, so
        // both publish the same records: the same ids with the same bytes, in the same number.
        _ = try runBTE(
            common + ["--group", TestEnvironment.uniqueName("projector-a-"), "--max-batch-messages", "1"], env)
        let single = try Self.records(topics)
        _ = try runBTE(common + ["--group", TestEnvironment.uniqueName("projector-b-")], env)
        let both = try Self.records(topics)
        #expect(single.filter { $0.hasPrefix("bte.behavioral-vectors.v1 ") }.count >= 12)
        #expect(single.filter { $0.hasPrefix("bte.signals.v1 ") }.count >= 8)
        #expect(single.filter { $0.hasPrefix("bte.insights.v1 ") }.count >= 8)
        #expect(both.count == 2 * single.count)
        #expect(Set(both) == Set(single))
        // An id always stands for the same bytes.
        for (id, copies) in try Self.published(topics) where Set(copies).count != 1 {
            Issue.record("\(id) published with \(Set(copies).count) different contents")
        }
        var counts: [String: Int] = [:]
        for record in both { counts[record, default: 0] += 1 }
        for (record, count) in counts where count % 2 != 0 {
            Issue.record("published \(count) times over the two groups: \(record.prefix(300))")
        }
    }
}

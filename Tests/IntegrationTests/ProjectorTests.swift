import BTECompute
import BTEDomain
import BTEPipeline
import BTETestSupport
import Foundation
import Kafka
import Testing

@Suite(.serialized) struct ProjectorTests {
    /// produce → ingest → project → consume: the signals of a hand-built workspace, twice from a
    /// reset group with identical bytes.
    @Test func projectsSignalsAfterIngestAndReplaysIdentically() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let admin = try KafkaAdmin(configuration: KafkaClientConfiguration(brokers: topics.brokers))
        _ = try admin.createTopics([KafkaNewTopic(name: topics.prefix + "bte.signals.v1", partitions: 3, replicationFactor: 1)])
        let ws = "11111111-1111-4111-8111-111111111111"
        func business(_ id: Int, _ type: String, _ entity: String, _ at: String, _ metadata: String) -> KafkaOutgoingMessage {
            let value = """
                {"record_type":"business_event","event_id":"00000000-0000-4000-8000-\(String(format: "%012d", id))","event_type":"\(type)",
                 "entity_type":"\(type.split(separator: ".")[0])","entity_id":"\(entity)","workspace_id":"\(ws)",
                 "sub_vertical_id":"33333333-3333-4333-8333-333333333333","actor_user_id":"aaaaaaaa-0000-4000-8000-00000000000a",
                 "timestamp":"\(at)","metadata":\(metadata)}
                """
            return KafkaOutgoingMessage(topic: topics.prefix + "bte.business-events.v1", key: Array(ws.utf8), value: Array(value.utf8))
        }
        let r1 = "eeeeeeee-0000-4000-8000-000000000001"
        try topics.produce([
            business(1, "recommendation.given", r1, "2026-01-10T00:00:00Z", #"{"action_type":"upsell","expected_value":100}"#),
            business(2, "recommendation.acted", r1, "2026-01-10T02:00:00Z", #"{"outcome":"success","realized_value":40}"#),
        ])
        let ingestGroup = TestEnvironment.uniqueName("ingest-")
        _ = try ingestUntilIdle(db, topics, group: ingestGroup)

        func project() throws -> Projector.Summary {
            var configuration = Projector.Configuration(brokers: topics.brokers, readerURL: db.readerURL)
            configuration.topicPrefix = topics.prefix
            configuration.group = TestEnvironment.uniqueName("projector-")
            configuration.ingestGroup = ingestGroup
            configuration.untilIdle = true
            configuration.sessionTimeoutMilliseconds = 6_000
            return try Projector(configuration: configuration, logger: TestEnvironment.logger).run(stop: StopSignal())
        }
        let first = try project()
        #expect(first.consumed == 2)
        // as_of is the newest event of the workspace in the batch: the act at 02:00.
        // decision_latency 7200 s; adoption 1/1; hesitation 0 views ÷ 3; missed 0; gap 100 − 40.
        let signals = try topics.readAll(topics.prefix + "bte.signals.v1")
        var byType: [String: [String: Any]] = [:]
        for message in signals {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(message.value ?? [])) as? [String: Any])
            byType[object["signal_type"] as? String ?? ""] = object
            #expect(object["as_of"] as? String == "2026-01-10T02:00:00.000000Z")
            #expect(object["thresholds_version"] as? Int == 2)
            #expect(object["computed_from"] as? Int == 2)
            #expect(message.key.map { String(decoding: $0, as: UTF8.self) } == ws)
        }
        #expect(Set(byType.keys) == ["decision_latency", "nba_adoption_rate", "hesitation_index", "missed_opportunity_count", "execution_gap"])
        #expect(byType["decision_latency"]?["signal_value"] as? Double == 7200)
        #expect(byType["nba_adoption_rate"]?["signal_value"] as? Double == 1)
        #expect(byType["hesitation_index"]?["signal_value"] as? Double == 0)
        #expect(byType["missed_opportunity_count"]?["signal_value"] as? Double == 0)
        #expect(byType["execution_gap"]?["signal_value"] as? Double == 60)

        // A reset group (a new one) republishes byte-identical records.
        let second = try project()
        #expect(second.consumed == 2)
        let all = try topics.readAll(topics.prefix + "bte.signals.v1")
        #expect(all.count == 10)
        let firstBytes = signals.map { $0.value ?? [] }.sorted { $0.lexicographicallyPrecedes($1) }
        let allBytes = all.map { $0.value ?? [] }.sorted { $0.lexicographicallyPrecedes($1) }
        #expect(allBytes == (firstBytes + firstBytes).sorted { $0.lexicographicallyPrecedes($1) })
    }
}

import BTECompute
import BTEDomain
import BTEProjection
import BTEStore
import BTETestSupport
import BTEWorker
import Foundation
import Kafka
import MetricsTestKit
import Postgres
import Testing

/// In-context delivery through the pipeline: business events produced to Kafka, stored by
/// ingest, decided by the projector and published on `bte.insight-deliveries.v1`.
@Suite(.serialized) struct InsightDeliveryPipelineTests {
    static let workspace = fixtureUUID(1, prefix: "51515151")
    static let other = fixtureUUID(2, prefix: "52525252")
    static let actor = fixtureUUID(1, prefix: "a1a1a1a1")
    static let deal = fixtureUUID(1, prefix: "dea1dea1")

    static func event(_ id: Int, _ workspace: String, _ type: String, entity: String, at: String, _ metadata: String)
        -> KafkaOutgoingMessage
    {
        let value = """
            {"record_type":"business_event","event_id":"\(fixtureUUID(id, prefix: "e1e1e1e1"))","event_type":"\(type)",
             "entity_type":"\(type.split(separator: ".")[0])","entity_id":"\(entity)","workspace_id":"\(workspace)",
             "sub_vertical_id":"\(fixtureUUID(1, prefix: "5b5b5b5b"))","actor_user_id":"\(actor)",
             "timestamp":"\(at)","metadata":\(metadata)}
            """
        return KafkaOutgoingMessage(
            topic: "bte.business-events.v1", key: Array(workspace.utf8), value: Array(value.utf8))
    }

    @Test func aPageAboutAStalledDealDeliversThatInsightToItsViewer() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        _ = try KafkaAdmin(configuration: KafkaClientConfiguration(brokers: topics.brokers)).createTopics(
            OutputTopic.allCases.map {
                KafkaNewTopic(name: $0.name(prefix: topics.prefix), partitions: 3, replicationFactor: 1)
            })
        // The deal was created on 1 March and nothing touched it since: on 20 March (19 days,
        // 14 or more) it is the workspace's one stalled deal, a medium-priority deal_stalled.
        // The actor opens the deal's page: that insight is about the page's subject, medium is
        // an ambient card, and nothing was shown before: delivered at once. The same events
        // in another workspace decide for that workspace's user only.
        let page = #"{"subject_type":"deal","subject_id":"\#(Self.deal)"}"#
        try topics.produce(
            [
                Self.event(1, Self.workspace, "deal.created", entity: Self.deal, at: "2026-03-01T00:00:00Z", "{}"),
                Self.event(2, Self.workspace, "page.viewed", entity: Self.deal, at: "2026-03-20T00:00:00Z", page),
                Self.event(3, Self.other, "deal.created", entity: Self.deal, at: "2026-03-01T00:00:00Z", "{}"),
                Self.event(4, Self.other, "page.viewed", entity: Self.deal, at: "2026-03-21T00:00:00Z", page),
            ].map {
                KafkaOutgoingMessage(topic: topics.prefix + $0.topic, key: $0.key, value: $0.value)
            })
        let ingestGroup = TestEnvironment.uniqueName("ingest-")
        _ = try ingestUntilIdle(db, topics, group: ingestGroup)
        var configuration = Projector.Configuration(brokers: topics.brokers, readerURL: db.readerURL)
        configuration.topicPrefix = topics.prefix
        configuration.group = TestEnvironment.uniqueName("projector-")
        configuration.ingestGroup = ingestGroup
        configuration.untilIdle = true
        configuration.sessionTimeoutMilliseconds = 6_000
        let metrics = TestMetrics()
        configuration.metrics = metrics
        _ = try Projector(configuration: configuration, logger: TestEnvironment.logger).run(stop: StopSignal())
        #expect(
            metrics.counterTotal(
                label: "bte_insight_deliveries_total", dimensions: [("outcome", "delivered"), ("reason", "at_once")])
                == 2)

        let records = try topics.readAll(OutputTopic.insightDeliveries.name(prefix: topics.prefix))
        #expect(records.count == 2)
        var expectedRecords: [String: String] = [:]
        for (workspace, pageID, at) in [
            (Self.workspace, 2, "2026-03-20T00:00:00.000000Z"), (Self.other, 4, "2026-03-21T00:00:00.000000Z"),
        ] {
            let trigger = fixtureUUID(pageID, prefix: "e1e1e1e1")
            // Thresholds version 2: the defaults' two changes.
            let insightID = UUIDv5.make(name: "insight|workspace|\(workspace)|deal_stalled|\(at)|2")
            let id = UUIDv5.make(name: "delivery|\(workspace)|\(Self.actor)|page_view|\(trigger)")
            let expected =
                "{\"id\":\"\(id)\",\"workspace_id\":\"\(workspace)\",\"user_id\":\"\(Self.actor)\","
                + "\"insight_id\":\"\(insightID)\",\"insight_type\":\"deal_stalled\",\"priority\":\"medium\","
                + "\"message\":\"1 deal in your pipeline has stalled for 2+ weeks.\",\"mode\":\"ambient\","
                + "\"outcome\":\"delivered\",\"reason\":\"at_once\",\"trigger\":{\"kind\":\"page_view\","
                + "\"event_id\":\"\(trigger)\",\"subject_type\":\"deal\",\"subject_id\":\"\(Self.deal)\","
                + "\"at\":\"\(at)\"},\"decided_at\":\"\(at)\",\"thresholds_version\":2,"
                + "\"engine_version\":\"\(engineVersion)\"}"
            let record = records.first { String(decoding: $0.key ?? [], as: UTF8.self) == "\(workspace)/\(Self.actor)" }
            #expect(record.map { String(decoding: $0.value ?? [], as: UTF8.self) } == expected)
            expectedRecords[workspace] = expected
        }

        // The sink stores each decision once, in an append-only table.
        let sunk = try sinkUntilIdle(db, topics)
        #expect(sunk.stored.deliveries == 2 && sunk.rejected.isEmpty, "\(sunk)")
        #expect(try sinkUntilIdle(db, topics, group: TestEnvironment.uniqueName("sink-")).stored.deliveries == 0)
        #expect(try db.count("SELECT count(*) FROM bte.insight_deliveries") == 2)
        let refused = #expect(throws: PostgresError.self) {
            try db.admin().execute("UPDATE bte.insight_deliveries SET outcome = 'suppressed'")
        }
        #expect(refused?.sqlState == "P0001")

        // The pending endpoint answers each workspace's key with its own user's delivery only.
        let readA = try APITests.createKey(db, scope: "read", rate: 10_000, workspace: Self.workspace)
        let readB = try APITests.createKey(db, scope: "read", rate: 10_000, workspace: Self.other)
        let readC = try APITests.createKey(db, scope: "read", rate: 10_000, workspace: APITests.other)
        let port = freePort()
        let server = try APITests.serve(db, topics, port: port)
        defer { server.signal(SIGKILL) }
        let path = "/v1/users/\(Self.actor)/insights/pending?since=2026-03-01T00:00:00Z"
        for (key, workspace) in [(readA, Self.workspace), (readB, Self.other)] {
            let reply = ReadAPITests.get(port, path, key: key)
            #expect(
                reply.body
                    == "{\"user_id\":\"\(Self.actor)\",\"since\":\"2026-03-01T00:00:00.000000Z\",\"truncated\":false,"
                    + "\"deliveries\":[\(expectedRecords[workspace] ?? "")]}", "\(reply)")
        }
        let stranger = ReadAPITests.get(port, path, key: readC)
        #expect(stranger.status == 200 && stranger.body.hasSuffix("\"deliveries\":[]}"), "\(stranger)")
        // Since after the decision: nothing pending.
        let later = ReadAPITests.get(
            port, "/v1/users/\(Self.actor)/insights/pending?since=2026-03-22T00:00:00Z", key: readA)
        #expect(later.body.hasSuffix("\"deliveries\":[]}"), "\(later)")
        #expect(ReadAPITests.get(port, path, key: nil).status == 401)
    }

    /// The orchestrator's `intent.resolved` about a deal is a trigger like a page of that deal.
    @Test func anIntentAboutAStalledDealDeliversThatInsight() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        _ = try KafkaAdmin(configuration: KafkaClientConfiguration(brokers: topics.brokers)).createTopics(
            OutputTopic.allCases.map {
                KafkaNewTopic(name: $0.name(prefix: topics.prefix), partitions: 3, replicationFactor: 1)
            })
        // As in the page view's test: on 20 March the deal is the one stalled deal (medium,
        // about the deal). A question back to the user names nothing and decides nothing; the
        // finished intent 10 s later names the deal: an ambient card at once.
        let intentID = fixtureUUID(9, prefix: "1a1a1a1a")
        let question = #"{"outcome":"clarify_args","intent_event_id":"\#(intentID)"}"#
        let resolved =
            #"{"outcome":"matched","intent_event_id":"\#(intentID)","#
            + #""subject_type":"deal","subject_id":"\#(Self.deal)"}"#
        try topics.produce(
            [
                Self.event(1, Self.workspace, "deal.created", entity: Self.deal, at: "2026-03-01T00:00:00Z", "{}"),
                Self.event(
                    2, Self.workspace, "intent.resolved", entity: intentID, at: "2026-03-20T00:00:00Z", question),
                Self.event(
                    3, Self.workspace, "intent.resolved", entity: intentID, at: "2026-03-20T00:00:10Z", resolved),
            ].map {
                KafkaOutgoingMessage(topic: topics.prefix + $0.topic, key: $0.key, value: $0.value)
            })
        let ingestGroup = TestEnvironment.uniqueName("ingest-")
        _ = try ingestUntilIdle(db, topics, group: ingestGroup)
        #expect(try db.count("SELECT count(*) FROM core.business_events WHERE event_type = 'intent.resolved'") == 2)
        var configuration = Projector.Configuration(brokers: topics.brokers, readerURL: db.readerURL)
        configuration.topicPrefix = topics.prefix
        configuration.group = TestEnvironment.uniqueName("projector-")
        configuration.ingestGroup = ingestGroup
        configuration.untilIdle = true
        configuration.sessionTimeoutMilliseconds = 6_000
        _ = try Projector(configuration: configuration, logger: TestEnvironment.logger).run(stop: StopSignal())

        let records = try topics.readAll(OutputTopic.insightDeliveries.name(prefix: topics.prefix))
        let at = "2026-03-20T00:00:10.000000Z"
        let trigger = fixtureUUID(3, prefix: "e1e1e1e1")
        // The insight as of the trigger: the deal_stalled of 00:00:10, thresholds version 2.
        let insightID = UUIDv5.make(name: "insight|workspace|\(Self.workspace)|deal_stalled|\(at)|2")
        let id = UUIDv5.make(name: "delivery|\(Self.workspace)|\(Self.actor)|intent|\(trigger)")
        let expected =
            "{\"id\":\"\(id)\",\"workspace_id\":\"\(Self.workspace)\",\"user_id\":\"\(Self.actor)\","
            + "\"insight_id\":\"\(insightID)\",\"insight_type\":\"deal_stalled\",\"priority\":\"medium\","
            + "\"message\":\"1 deal in your pipeline has stalled for 2+ weeks.\",\"mode\":\"ambient\","
            + "\"outcome\":\"delivered\",\"reason\":\"at_once\",\"trigger\":{\"kind\":\"intent\","
            + "\"event_id\":\"\(trigger)\",\"subject_type\":\"deal\",\"subject_id\":\"\(Self.deal)\","
            + "\"at\":\"\(at)\"},\"decided_at\":\"\(at)\",\"thresholds_version\":2,"
            + "\"engine_version\":\"\(engineVersion)\"}"
        #expect(records.map { String(decoding: $0.value ?? [], as: UTF8.self) } == [expected])
    }

    /// A workspace's own delivery thresholds rule its decisions only: the other workspace, fed
    /// the same events, decides by the shared ones.
    @Test func aWorkspacesOwnThresholdsDecideForItAlone() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        _ = try KafkaAdmin(configuration: KafkaClientConfiguration(brokers: topics.brokers)).createTopics(
            OutputTopic.allCases.map {
                KafkaNewTopic(name: $0.name(prefix: topics.prefix), partitions: 3, replicationFactor: 1)
            })
        // Every user of `other` is held out (100 %); the shared share stays 0. Version 3.
        #expect(
            try ThresholdStore(connection: try db.admin()).set(
                key: "delivery.holdout_percent", value: 100, workspaceID: Self.other, by: "ops", reason: "lift") == 3)
        let page = #"{"subject_type":"deal","subject_id":"\#(Self.deal)"}"#
        try topics.produce(
            [
                Self.event(1, Self.workspace, "deal.created", entity: Self.deal, at: "2026-03-01T00:00:00Z", "{}"),
                Self.event(2, Self.workspace, "page.viewed", entity: Self.deal, at: "2026-03-20T00:00:00Z", page),
                Self.event(3, Self.other, "deal.created", entity: Self.deal, at: "2026-03-01T00:00:00Z", "{}"),
                Self.event(4, Self.other, "page.viewed", entity: Self.deal, at: "2026-03-20T00:00:00Z", page),
            ].map {
                KafkaOutgoingMessage(topic: topics.prefix + $0.topic, key: $0.key, value: $0.value)
            })
        let ingestGroup = TestEnvironment.uniqueName("ingest-")
        _ = try ingestUntilIdle(db, topics, group: ingestGroup)
        var configuration = Projector.Configuration(brokers: topics.brokers, readerURL: db.readerURL)
        configuration.topicPrefix = topics.prefix
        configuration.group = TestEnvironment.uniqueName("projector-")
        configuration.ingestGroup = ingestGroup
        configuration.untilIdle = true
        configuration.sessionTimeoutMilliseconds = 6_000
        _ = try Projector(configuration: configuration, logger: TestEnvironment.logger).run(stop: StopSignal())

        var decided: [String: (outcome: String, reason: String, version: Int)] = [:]
        for record in try topics.readAll(OutputTopic.insightDeliveries.name(prefix: topics.prefix)) {
            let object = try JSONSerialization.jsonObject(with: Data(record.value ?? [])) as? [String: Any] ?? [:]
            decided[object["workspace_id"] as? String ?? ""] = (
                object["outcome"] as? String ?? "", object["reason"] as? String ?? "",
                object["thresholds_version"] as? Int ?? 0
            )
        }
        #expect(decided.count == 2)
        #expect(decided[Self.workspace].map { "\($0)" } == #"(outcome: "delivered", reason: "at_once", version: 3)"#)
        #expect(decided[Self.other].map { "\($0)" } == #"(outcome: "control", reason: "holdout", version: 3)"#)
    }
}

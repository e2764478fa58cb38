import BTECompute
import BTEDomain
import BTEProjection
import BTEStore
import BTETestSupport
import Foundation
import Kafka
import MetricsTestKit
import Postgres
import Testing

@Suite(.serialized) struct SweepTests {
    static let w1 = "11111111-1111-4111-8111-111111111111"
    static let w2 = "c2222222-2222-4222-8222-222222222222"
    static let sub = "33333333-3333-4333-8333-333333333333"
    static let actor = "aaaaaaaa-0000-4000-8000-00000000000a"

    /// A hand-built history; the expected values are worked out next to the assertions.
    func seed(_ db: TestDatabase) throws {
        let admin = try db.admin()
        var offset = 0
        func event(_ ws: String, _ type: String, _ entity: String, _ at: String, _ metadata: String = "{}") throws {
            offset += 1
            try admin.execute(
                """
                INSERT INTO core.business_events (event_id, event_type, entity_type, entity_id, workspace_id,
                    sub_vertical_id, actor_user_id, timestamp, metadata, content_hash, source_topic, source_partition,
                    source_offset)
                VALUES (gen_random_uuid(), $1, split_part($1, '.', 1), $2::uuid, $3, $4, $5, $6, $7::jsonb, 0, 't', 0,
                    $8)
                """, [type, entity, ws, Self.sub, Self.actor, at, metadata, String(offset)])
        }
        func entity(_ n: Int) -> String { "eeeeeeee-0000-4000-8000-\(String(format: "%012d", n))" }
        try event(
            Self.w1, "recommendation.given", entity(1), "2026-01-10T00:00:00Z",
            #"{"action_type":"upsell","expected_value":100}"#)
        try event(
            Self.w1, "recommendation.acted", entity(1), "2026-01-10T02:00:00Z",
            #"{"outcome":"success","realized_value":40}"#)
        try event(Self.w1, "recommendation.given", entity(2), "2025-12-20T00:00:00Z", #"{"action_type":"follow_up"}"#)
        try event(Self.w1, "page.viewed", entity(50), "2025-12-25T00:00:00Z")
        try event(Self.w1, "recommendation.acted", entity(2), "2026-01-05T00:00:00Z")
        try event(
            Self.w1, "recommendation.given", entity(3), "2026-01-15T00:00:00Z",
            #"{"action_type":"upsell","expected_value":30}"#)
        try event(Self.w1, "workflow.started", entity(10), "2026-01-08T00:00:00Z")
        try event(Self.w1, "workflow.completed", entity(10), "2026-01-09T00:00:00Z")
        try event(Self.w1, "workflow.abandoned", entity(11), "2026-01-12T00:00:00Z", #"{"stage":"proposal"}"#)
        // An open deal last touched 31 days before as_of: stalled (and outside the signal window).
        try event(Self.w1, "deal.created", entity(20), "2026-01-01T00:00:00Z")
        try event(Self.w2, "recommendation.given", entity(9), "2026-01-20T00:00:00Z", #"{"action_type":"upsell"}"#)
        try event(Self.w2, "recommendation.acted", entity(9), "2026-01-21T00:00:00Z", #"{"outcome":"success"}"#)
        // One user's interactions: one inside the window, one 40 days before as_of.
        try admin.execute(
            "SELECT bte.ensure_interaction_partition('2026-01-01T00:00:00Z'), "
                + "bte.ensure_interaction_partition('2025-12-01T00:00:00Z')"
        )
        for (n, at) in [(1, "2026-01-20T10:00:00Z"), (2, "2025-12-23T10:00:00Z")] {
            try admin.execute(
                """
                INSERT INTO core.interaction_events (event_id, timestamp, event_type, user_id, session_id, content_hash,
                    source_topic, source_partition, source_offset)
                VALUES (gen_random_uuid(), $1, 'tap', 'user-9', 's', 0, 'i', 0, $2)
                """, [at, String(n)])
        }
        for (n, at) in [(1, "2026-01-31T00:00:00Z"), (2, "2026-01-20T00:00:00Z")] {
            try admin.execute(
                """
                INSERT INTO core.user_actions (action_id, action_type, workspace_id, actor_user_id, timestamp,
                    content_hash, source_topic, source_partition, source_offset)
                VALUES ($1::uuid, 'note.added', $2, $3, $4, 0, 'u', 0, $5)
                """, [entity(100 + n), Self.w1, Self.actor, at, String(n)])
        }
    }

    /// The sweep reads the workspaces range by range; the ranges cut the UUID space at the first
    /// byte, cover it, and follow each other.
    @Test func workspaceRangesCoverTheIDSpaceInOrder() {
        func bound(_ byte: String) -> String { byte + "000000-0000-0000-0000-000000000000" }
        #expect(WorkspaceRange.parts(1) == [.all])
        #expect(WorkspaceRange.parts(0) == [.all])
        #expect(WorkspaceRange.parts(2) == [WorkspaceRange(upper: bound("80")), WorkspaceRange(lower: bound("80"))])
        // 256 / 3 = 85.3: cuts at 85 = 0x55 and 170 = 0xaa.
        #expect(WorkspaceRange.parts(3).map(\.lower) == [nil, bound("55"), bound("aa")])
        let sixteen = WorkspaceRange.parts(16)
        #expect(sixteen.count == 16)
        #expect(sixteen.first?.lower == nil)
        #expect(sixteen.last?.upper == nil)
        #expect(sixteen[1].lower == bound("10"))
        #expect(sixteen[12].lower == bound("c0"))
        #expect((1..<16).allSatisfy { sixteen[$0].lower == sixteen[$0 - 1].upper })
        #expect(WorkspaceRange.parts(1_000).count == 256)
        #expect(WorkspaceRange.parts(256).last?.lower == bound("ff"))
    }

    @Test func sweepPublishesHandComputedSignalsDeterministically() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        try seed(db)
        let topics = try TestTopics()
        let admin = try KafkaAdmin(configuration: KafkaClientConfiguration(brokers: topics.brokers))
        _ = try admin.createTopics(
            ["bte.signals.v1", "bte.insights.v1", "bte.behavioral-vectors.v1"].map {
                KafkaNewTopic(name: topics.prefix + $0, partitions: 3, replicationFactor: 1)
            })
        var sweep = Sweep(brokers: topics.brokers, readerURL: db.readerURL, logger: TestEnvironment.logger)
        sweep.topicPrefix = topics.prefix
        let asOf = try #require(Timestamp(rfc3339: "2026-02-01T00:00:00Z"))

        let computed = try sweep.compute(asOf: asOf)
        let (records, workspaces, version) = (computed.records, computed.workspaces, computed.thresholdsVersion)
        #expect(workspaces == 2)
        #expect(version == 2)  // the two default thresholds
        // W1 (0x11…) and W2 (0xc2…) are read in different ranges; the outputs keep workspace order.
        #expect(records.first?.workspaceID == Self.w1)
        #expect(records.last?.workspaceID == Self.w2)
        #expect(records.map(\.workspaceID) == records.map(\.workspaceID).sorted())
        func values(_ ws: String) -> [String: Double] {
            Dictionary(
                uniqueKeysWithValues: records.filter { $0.workspaceID == ws }.map {
                    ($0.signal.type.rawValue, $0.signal.value)
                })
        }
        // W = (2026-01-02, 2026-02-01]. Acts in W: R1 after 7200 s, R2 (given before W) after 16 days = 1,382,400 s.
        let w1 = values(Self.w1)
        #expect(w1["decision_latency"] == 694_800)  // (7200 + 1382400) / 2
        #expect(w1["execution_consistency"] == 687_600)  // |1382400 − 7200| / 2
        #expect(w1["idle_decay"] == 1)  // newest action 2026-01-31
        #expect(w1["momentum"] == 1)  // 1 this week, 1 the week before
        #expect(w1["nba_adoption_rate"] == 0.5)  // givens in W: R1 (acted), R3 (not)
        #expect(w1["follow_through_rate"] == 1)
        #expect(w1["drop_off_point"] == 1)
        #expect(
            records.first { $0.workspaceID == Self.w1 && $0.signal.type == .dropOffPoint }?.signal.label == "proposal")
        #expect(w1["hesitation_index"] == 0.5 / 3)  // R1: 0 views, R2: 1 view (before W) → mean 0.5, ÷ 3
        #expect(w1["missed_opportunity_count"] == 1)  // R3: 17 days, upsell succeeded at W2 (same sub-vertical)
        #expect(w1["execution_gap"] == 90)  // (100 + 30) − 40
        #expect(w1.count == 10)
        let w2 = values(Self.w2)
        #expect(
            w2 == [
                "decision_latency": 86_400, "nba_adoption_rate": 1, "hesitation_index": 0,
                "missed_opportunity_count": 0, "execution_gap": 0,
            ])

        // Insights: W1's open deal has stalled; upsell, the peers' success, is already W1's and W2's own
        // recommendation.
        #expect(computed.insights.map(\.insight.type) == [.dealStalled])
        #expect(computed.insights.first?.workspaceID == Self.w1)
        #expect(computed.insights.first?.insight.message == "1 deal in your pipeline has stalled for 2+ weeks.")

        // The active user's vector counts only the interaction inside the window.
        #expect(computed.vectors.count == 1)
        let vector = try #require(
            try JSONSerialization.jsonObject(with: Data(computed.vectors.first?.value ?? [])) as? [String: Any])
        #expect(vector["user_id"] as? String == "user-9")
        #expect(vector["total_interactions"] as? Int == 1)
        #expect(vector["as_of"] as? String == "2026-02-01T00:00:00.000000Z")

        // Published twice: the same bytes under the same keys.
        _ = try sweep.run(asOf: asOf)
        _ = try sweep.run(asOf: asOf)
        let published = try topics.readAll(topics.prefix + "bte.signals.v1")
        #expect(published.count == 30)
        var counts: [String: Int] = [:]
        for message in published {
            counts[
                "\(String(decoding: message.key ?? [], as: UTF8.self)) "
                    + "\(String(decoding: message.value ?? [], as: UTF8.self))",
                default: 0] += 1
        }
        #expect(counts.count == 15)
        #expect(counts.values.allSatisfy { $0 == 2 })
        let expectedBytes = Set(records.map { "\($0.workspaceID) \(String(decoding: $0.json(), as: UTF8.self))" })
        #expect(Set(counts.keys) == expectedBytes)
        let insights = try topics.readAll(topics.prefix + "bte.insights.v1")
        #expect(insights.count == 2)
        #expect(insights.first?.value == insights.last?.value)
        #expect(insights.first?.value == computed.insights.first?.json())
        let vectors = try topics.readAll(topics.prefix + "bte.behavioral-vectors.v1")
        #expect(vectors.count == 2)
        #expect(vectors.first?.value == vectors.last?.value)
    }
}

@Suite(.serialized) struct ComputationFailureTests {
    /// A workspace whose execution_gap overflows is reported (log, metric, dead letter) while
    /// its other signals and every other workspace's are published.
    @Test func failingWorkspaceDoesNotBlockOthers() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let broken = "55555555-5555-4555-8555-555555555555"
        let healthy = "66666666-6666-4666-8666-666666666666"
        let admin = try db.admin()
        for (n, ws, expected) in [(1, broken, "1e308"), (2, broken, "1e308"), (3, healthy, "100")] {
            try admin.execute(
                """
                INSERT INTO core.business_events (event_id, event_type, entity_type, entity_id, workspace_id,
                    sub_vertical_id, actor_user_id, timestamp, metadata, content_hash, source_topic, source_partition,
                    source_offset)
                VALUES (gen_random_uuid(), 'recommendation.given', 'recommendation', gen_random_uuid(), $1, $1, $1,
                    '2026-01-20T00:00:00Z', $2::jsonb, 0, 't', 0, $3)
                """, [ws, "{\"expected_value\":\(expected)}", String(n)])
        }
        let topics = try TestTopics()
        _ = try KafkaAdmin(configuration: KafkaClientConfiguration(brokers: topics.brokers)).createTopics(
            ["bte.signals.v1", "bte.insights.v1", "bte.behavioral-vectors.v1"].map {
                KafkaNewTopic(name: topics.prefix + $0, partitions: 3, replicationFactor: 1)
            })
        let metrics = TestMetrics()
        var sweep = Sweep(brokers: topics.brokers, readerURL: db.readerURL, logger: TestEnvironment.logger)
        sweep.topicPrefix = topics.prefix
        sweep.metrics = metrics
        let asOf = try #require(Timestamp(rfc3339: "2026-02-01T00:00:00Z"))
        let result = try sweep.run(asOf: asOf)

        func types(_ ws: String) -> Set<String> {
            Set(result.records.filter { $0.workspaceID == ws }.map(\.signal.type.rawValue))
        }
        // One unacted given each: adoption 0, missed 0; the healthy gap is 100, the broken one overflows.
        #expect(types(broken) == ["nba_adoption_rate", "missed_opportunity_count"])
        #expect(types(healthy) == ["nba_adoption_rate", "missed_opportunity_count", "execution_gap"])
        #expect(
            result.records.first { $0.workspaceID == healthy && $0.signal.type == .executionGap }?.signal.value == 100)
        #expect(
            metrics.counterTotal(
                label: "bte_computation_failures_total", dimensions: [("signal_type", "execution_gap")]) == 1)
        let letters = try topics.readAll(topics.prefix + "bte.dead-letter.v1")
        #expect(letters.count == 1)
        let letter = try #require(
            try JSONSerialization.jsonObject(with: Data(letters.first?.value ?? [])) as? [String: Any])
        #expect(letter["error_code"] as? String == "computation_failed")
        #expect(letter["entity_id"] as? String == broken)
        #expect(letter["signal_type"] as? String == "execution_gap")
        #expect(letter["source_topic"] as? String == "bte.sweep")
    }
}

@Suite(.serialized) struct PeerSuccessTests {
    /// A peer success is the FIRST act of a given with outcome success: a failed first act
    /// followed by a successful second act on the same recommendation is no success.
    @Test func missedOpportunitiesCountOnlyFirstActsOfPeers() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let admin = try db.admin()
        let (subA, subB) = (fixtureUUID(1, prefix: "a0a0a0a0"), fixtureUUID(2, prefix: "b0b0b0b0"))
        let (w1, w2, w3, w4) = (
            fixtureUUID(1, prefix: "11111111"), fixtureUUID(2, prefix: "22222222"),
            fixtureUUID(3, prefix: "33333333"), fixtureUUID(4, prefix: "c4444444")
        )
        var offset = 0
        func event(_ ws: String, _ sub: String, _ type: String, _ entity: Int, _ at: String, _ metadata: String) throws
        {
            offset += 1
            try admin.execute(
                """
                INSERT INTO core.business_events (event_id, event_type, entity_type, entity_id, workspace_id,
                    sub_vertical_id, actor_user_id, timestamp, metadata, content_hash, source_topic, source_partition,
                    source_offset)
                VALUES ($1::uuid, $2, 'recommendation', $3::uuid, $4, $5, $4, $6, $7::jsonb, 0, 't', 0, $8)
                """,
                [
                    fixtureUUID(offset, prefix: "ffffffff"), type, fixtureUUID(entity, prefix: "eeeeeeee"), ws, sub, at,
                    metadata, String(offset),
                ])
        }
        // Sub-vertical A: W1 was given upsell 10 days before as_of and never acted. W2's only
        // upsell act that counts is its first one, a failure; the success two hours later is an
        // extra act and is ignored. So no peer succeeded: W1 missed nothing.
        try event(w1, subA, "recommendation.given", 1, "2026-01-22T00:00:00Z", #"{"action_type":"upsell"}"#)
        try event(w2, subA, "recommendation.given", 2, "2026-01-20T00:00:00Z", #"{"action_type":"upsell"}"#)
        try event(w2, subA, "recommendation.acted", 2, "2026-01-21T00:00:00Z", #"{"outcome":"failure"}"#)
        try event(w2, subA, "recommendation.acted", 2, "2026-01-21T02:00:00Z", #"{"outcome":"success"}"#)
        // Sub-vertical B, the same with W4's first act a success: W3 missed one opportunity.
        // W4's id is in the other half of the sweep's split: its success reaches W3 across it.
        try event(w3, subB, "recommendation.given", 3, "2026-01-22T00:00:00Z", #"{"action_type":"upsell"}"#)
        try event(w4, subB, "recommendation.given", 4, "2026-01-20T00:00:00Z", #"{"action_type":"upsell"}"#)
        try event(w4, subB, "recommendation.acted", 4, "2026-01-21T00:00:00Z", #"{"outcome":"success"}"#)
        try event(w4, subB, "recommendation.acted", 4, "2026-01-21T02:00:00Z", #"{"outcome":"failure"}"#)

        let sweep = Sweep(brokers: "unused:9092", readerURL: db.readerURL, logger: TestEnvironment.logger)
        let computed = try sweep.compute(asOf: try #require(Timestamp(rfc3339: "2026-02-01T00:00:00Z")))
        func missed(_ ws: String) -> Double? {
            computed.records.first { $0.workspaceID == ws && $0.signal.type == .missedOpportunityCount }?.signal.value
        }
        #expect(missed(w1) == 0)
        #expect(missed(w3) == 1)
    }
}

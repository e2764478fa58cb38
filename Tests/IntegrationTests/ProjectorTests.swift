import BTECompute
import BTEDomain
import BTEIngest
import BTEProjection
import BTETestSupport
import BTEWorker
import Foundation
import Kafka
import Synchronization
import Testing

@Suite(.serialized) struct ProjectorTests {
    /// produce → ingest → project → consume: the signals of a hand-built workspace, twice from a
    /// reset group with identical bytes.
    @Test func projectsSignalsAfterIngestAndReplaysIdentically() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let admin = try KafkaAdmin(configuration: KafkaClientConfiguration(brokers: topics.brokers))
        _ = try admin.createTopics(
            ["bte.signals.v1", "bte.behavioral-vectors.v1", "bte.insights.v1"].map {
                KafkaNewTopic(name: topics.prefix + $0, partitions: 3, replicationFactor: 1)
            })
        let ws = "11111111-1111-4111-8111-111111111111"
        func business(_ id: Int, _ type: String, _ entity: String, _ at: String, _ metadata: String)
            -> KafkaOutgoingMessage
        {
            let value = """
                {"record_type":"business_event","event_id":"00000000-0000-4000-8000-\(String(format: "%012d", id))",
                 "event_type":"\(type)",
                 "entity_type":"\(type.split(separator: ".")[0])","entity_id":"\(entity)","workspace_id":"\(ws)",
                 "sub_vertical_id":"33333333-3333-4333-8333-333333333333",
                 "actor_user_id":"aaaaaaaa-0000-4000-8000-00000000000a",
                 "timestamp":"\(at)","metadata":\(metadata)}
                """
            return KafkaOutgoingMessage(
                topic: topics.prefix + "bte.business-events.v1", key: Array(ws.utf8), value: Array(value.utf8))
        }
        let r1 = "eeeeeeee-0000-4000-8000-000000000001"
        try topics.produce([
            business(
                1, "recommendation.given", r1, "2026-01-10T00:00:00Z", #"{"action_type":"upsell","expected_value":100}"#
            ),
            business(
                2, "recommendation.acted", r1, "2026-01-10T02:00:00Z", #"{"outcome":"success","realized_value":40}"#),
            // An open deal, 21 days old at as_of: a stalled-deal insight.
            business(3, "deal.created", "dddddddd-0000-4000-8000-000000000001", "2025-12-20T02:00:00Z", "{}"),
        ])
        // Two interactions of one user in one session, 30 minutes apart, one failed.
        func interaction(_ id: Int, _ at: String, _ success: Bool) -> KafkaOutgoingMessage {
            let value = """
                {"event_id":"00000000-0000-4000-9000-\(String(format: "%012d", id))","timestamp":"\(at)",
                 "event_type":"tap",
                 "user_id":"user-1","session_id":"s-1","capsule_type":"task","duration_ms":300,"success":\(success)}
                """
            return KafkaOutgoingMessage(
                topic: topics.prefix + "bte.interaction-events.v1", key: Array("user-1".utf8), value: Array(value.utf8))
        }
        try topics.produce([
            interaction(1, "2026-01-12T08:00:00Z", true), interaction(2, "2026-01-12T08:30:00Z", false),
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
        #expect(first.consumed == 5)
        #expect(first.vectors == 2)
        #expect(first.insights == 1)
        // as_of points are the workspace's events in log order: the given (00:00), the act
        // (02:00), then the deal created on 2025-12-20, which arrives late: its as_of is one
        // microsecond past the act's, with the deal counted (computed_from 3).
        let signals = try topics.readAll(topics.prefix + "bte.signals.v1")
        let objects = try signals.map { message in
            #expect(message.key.map { String(decoding: $0, as: UTF8.self) } == ws)
            return try #require(try JSONSerialization.jsonObject(with: Data(message.value ?? [])) as? [String: Any])
        }
        #expect(objects.count == 3 + 5 + 5)
        var byAsOf: [String: [String: [String: Any]]] = [:]
        for object in objects {
            #expect(object["thresholds_version"] as? Int == 2)
            byAsOf[object["as_of"] as? String ?? "", default: [:]][object["signal_type"] as? String ?? ""] = object
        }
        #expect(
            Set(byAsOf.keys) == [
                "2026-01-10T00:00:00.000000Z", "2026-01-10T02:00:00.000000Z", "2026-01-10T02:00:00.000001Z",
            ])
        // At 00:00: one given, not acted on: adoption 0/1, missed 0 (0 days old), gap 100.
        let atGiven = byAsOf["2026-01-10T00:00:00.000000Z"] ?? [:]
        #expect(Set(atGiven.keys) == ["nba_adoption_rate", "missed_opportunity_count", "execution_gap"])
        #expect(atGiven["nba_adoption_rate"]?["signal_value"] as? Double == 0)
        #expect(atGiven["execution_gap"]?["signal_value"] as? Double == 100)
        #expect(atGiven["execution_gap"]?["computed_from"] as? Int == 1)
        // decision_latency 7200 s; adoption 1/1; hesitation 0 views ÷ 3; missed 0; gap 100 − 40;
        // from the given and the act, then also the deal.
        for (asOf, used) in [("2026-01-10T02:00:00.000000Z", 2), ("2026-01-10T02:00:00.000001Z", 3)] {
            let byType = byAsOf[asOf] ?? [:]
            #expect(
                Set(byType.keys) == [
                    "decision_latency", "nba_adoption_rate", "hesitation_index", "missed_opportunity_count",
                    "execution_gap",
                ])
            #expect(byType["decision_latency"]?["signal_value"] as? Double == 7200)
            #expect(byType["nba_adoption_rate"]?["signal_value"] as? Double == 1)
            #expect(byType["hesitation_index"]?["signal_value"] as? Double == 0)
            #expect(byType["missed_opportunity_count"]?["signal_value"] as? Double == 0)
            #expect(byType["execution_gap"]?["signal_value"] as? Double == 60)
            for object in byType.values { #expect(object["computed_from"] as? Int == used) }
        }
        #expect(Set(objects.map { $0["id"] as? String }).count == objects.count)

        // The vector: as of 08:30, 2 interactions in 1 session of 30 minutes, error rate 1/2,
        // mornings only, Monday 2026-01-12 only, novice.
        // (The first vector, as of 08:00, counts one interaction.)
        let vectors = try topics.readAll(topics.prefix + "bte.behavioral-vectors.v1")
        #expect(vectors.count == 2)
        let vector = try #require(
            try JSONSerialization.jsonObject(with: Data(vectors.last?.value ?? [])) as? [String: Any])
        #expect(vector["user_id"] as? String == "user-1")
        #expect(vector["as_of"] as? String == "2026-01-12T08:30:00.000000Z")
        #expect(vector["total_interactions"] as? Int == 2)
        #expect(vector["total_sessions"] as? Int == 1)
        #expect(vector["avg_session_duration_minutes"] as? Double == 30)
        #expect(vector["expertise_level"] as? String == "novice")
        let proficiency = try #require(vector["proficiency_indicators"] as? [String: Any])
        #expect(proficiency["error_rate"] as? Double == 0.5)
        #expect(proficiency["avg_interaction_duration_ms"] as? Double == 300)
        let usage = try #require(vector["usage_patterns"] as? [String: Any])
        #expect((usage["day_of_week_distribution"] as? [String: Double])?["monday"] == 1)
        #expect((usage["time_of_day_distribution"] as? [String: Double])?["morning"] == 1)
        let engagement = try #require(vector["engagement_metrics"] as? [String: Any])
        // 0.4 · 1/20 + 0.3 · 2/10 + 0.3 · 1/30 = 0.02 + 0.06 + 0.01
        #expect(abs((engagement["engagement_score"] as? Double ?? 0) - 0.09) < 1e-12)

        // A reset group (a new one) republishes byte-identical records.
        let second = try project()
        #expect(second.consumed == 5)
        let insights = try topics.readAll(topics.prefix + "bte.insights.v1")
        #expect(insights.count == 2)
        #expect(insights.first?.value == insights.last?.value)
        let insight = try #require(
            try JSONSerialization.jsonObject(with: Data(insights.first?.value ?? [])) as? [String: Any])
        #expect(insight["message"] as? String == "1 deal in your pipeline has stalled for 2+ weeks.")
        #expect(insight["as_of"] as? String == "2026-01-10T02:00:00.000001Z")
        let vectorsAgain = try topics.readAll(topics.prefix + "bte.behavioral-vectors.v1")
        #expect(vectorsAgain.count == 4)
        #expect(
            vectorsAgain.map(\.value).sorted { ($0 ?? []).lexicographicallyPrecedes($1 ?? []) }
                == (vectors + vectors).map(\.value).sorted { ($0 ?? []).lexicographicallyPrecedes($1 ?? []) })
        let all = try topics.readAll(topics.prefix + "bte.signals.v1")
        #expect(all.count == 26)
        let firstBytes = signals.map { $0.value ?? [] }.sorted { $0.lexicographicallyPrecedes($1) }
        let allBytes = all.map { $0.value ?? [] }.sorted { $0.lexicographicallyPrecedes($1) }
        #expect(allBytes == (firstBytes + firstBytes).sorted { $0.lexicographicallyPrecedes($1) })
    }

    /// A projector waiting longer than max.poll.interval.ms for ingest keeps polling (its
    /// partitions paused), so it is still a member when the batch becomes durable: it publishes
    /// and commits instead of failing its commit for good.
    @Test func waitingForIngestLongerThanThePollIntervalKeepsTheMember() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let admin = try KafkaAdmin(configuration: KafkaClientConfiguration(brokers: topics.brokers))
        _ = try admin.createTopics(
            ["bte.signals.v1", "bte.behavioral-vectors.v1", "bte.insights.v1"].map {
                KafkaNewTopic(name: topics.prefix + $0, partitions: 3, replicationFactor: 1)
            })
        let value = """
            {"event_id":"00000000-0000-4000-9000-000000000001","timestamp":"2026-01-12T08:00:00Z",\
            "event_type":"tap","user_id":"user-1","session_id":"s-1"}
            """
        try topics.produce([
            KafkaOutgoingMessage(
                topic: topics.prefix + "bte.interaction-events.v1", key: Array("user-1".utf8), value: Array(value.utf8))
        ])
        let ingestGroup = TestEnvironment.uniqueName("ingest-")
        var configuration = Projector.Configuration(brokers: topics.brokers, readerURL: db.readerURL)
        configuration.topicPrefix = topics.prefix
        configuration.group = TestEnvironment.uniqueName("projector-")
        configuration.ingestGroup = ingestGroup
        configuration.untilIdle = true
        configuration.sessionTimeoutMilliseconds = 6_000
        configuration.kafkaProperties = ["max.poll.interval.ms": "7000"]
        let config = configuration
        let stop = StopSignal()
        let finished = DispatchSemaphore(value: 0)
        let result = Mutex<Result<Projector.Summary, any Error>?>(nil)
        Thread.detachNewThread {
            let outcome = Result {
                try Projector(configuration: config, logger: TestEnvironment.logger).run(stop: stop)
            }
            result.withLock { $0 = outcome }
            finished.signal()
        }
        // Nothing is durable for 12 s: well past the poll interval.
        Thread.sleep(forTimeInterval: 12)
        _ = try ingestUntilIdle(db, topics, group: ingestGroup)
        let inTime = finished.wait(timeout: .now() + 60) == .success
        stop.stop()
        if !inTime { _ = finished.wait(timeout: .now() + 30) }
        #expect(inTime, "the projector did not finish after ingest caught up")
        let summary = try #require(try result.withLock { $0 }?.get())
        #expect(summary.vectors == 1)
        #expect(try topics.readAll(topics.prefix + "bte.behavioral-vectors.v1").count == 1)
    }

    /// `--until-idle` exits once every assigned partition is caught up, including partitions
    /// with nothing new since the group's last run (they are at the group's committed offset).
    @Test func untilIdleExitsWhenSomePartitionsHaveNothingNew() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        try createOutputTopics(topics)
        let topic = topics.prefix + "bte.interaction-events.v1"
        func taps(_ users: Range<Int>, _ base: Int) -> [KafkaOutgoingMessage] {
            users.map { n in
                let value = """
                    {"event_id":"\(fixtureUUID(base + n, prefix: "1d1e1d1e"))",
                     "timestamp":"2026-01-12T08:00:0\(n % 10)Z",
                     "event_type":"tap","user_id":"u-\(n)","session_id":"s"}
                    """
                return KafkaOutgoingMessage(topic: topic, key: Array("u-\(n)".utf8), value: Array(value.utf8))
            }
        }
        try topics.produce(taps(0..<9, 0))
        // The fixture is only meaningful with old messages on more than one partition.
        #expect(Set(try topics.readAll(topic).map(\.partition)).count >= 2)
        let ingestGroup = TestEnvironment.uniqueName("ingest-")
        _ = try ingestUntilIdle(db, topics, group: ingestGroup)
        var configuration = Projector.Configuration(brokers: topics.brokers, readerURL: db.readerURL)
        configuration.topicPrefix = topics.prefix
        configuration.group = TestEnvironment.uniqueName("projector-")
        configuration.ingestGroup = ingestGroup
        configuration.untilIdle = true
        configuration.sessionTimeoutMilliseconds = 6_000
        #expect(
            try Projector(configuration: configuration, logger: TestEnvironment.logger).run(stop: StopSignal()).consumed
                == 9)

        // One new tap on one partition; the others have nothing new.
        try topics.produce(taps(0..<1, 100))
        _ = try ingestUntilIdle(db, topics, group: ingestGroup)
        let stop = StopSignal()
        let watchdog = Thread {
            Thread.sleep(forTimeInterval: 60)
            stop.stop()
        }
        watchdog.start()
        let started = Date()
        let second = try Projector(configuration: configuration, logger: TestEnvironment.logger).run(stop: stop)
        let elapsed = Date().timeIntervalSince(started)
        #expect(second.consumed == 1)
        // Exits by itself once caught up (a few seconds of group join), long before the watchdog.
        #expect(elapsed < 45, "\(elapsed) s")
        #expect(!stop.isSet)
    }
}

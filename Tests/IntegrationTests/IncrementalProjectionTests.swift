import BTEDomain
import BTEProjection
import BTETestSupport
import Foundation
import Kafka
import Testing

/// The projector keeps its state in memory and applies each batch's rows; these check it against
/// a full recomputation (the sweep), across batchings, processes and a `kill -9`.
@Suite(.serialized) struct IncrementalProjectionTests {
    static let subVertical = "33333333-3333-4333-8333-333333333333"
    static let outputs = [
        "bte.signals.v1", "bte.behavioral-vectors.v1", "bte.insights.v1", "bte.insight-deliveries.v1",
    ]

    /// Three workspaces of one sub-vertical (each other's peers) and four users over 60 days:
    /// mostly in time order, one event in six late by up to 40 days, some at equal times.
    static func stream(_ topics: TestTopics, seed: UInt64, count: Int) -> [KafkaOutgoingMessage] {
        var state = seed
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        let workspaces = (1...3).map { fixtureUUID($0, prefix: "11111111") }
        let actors = (1...2).map { fixtureUUID($0, prefix: "aaaaaaaa") }
        let start = Timestamp(rfc3339: "2026-03-01T00:00:00Z")?.microseconds ?? 0
        let hour: Int64 = 3_600_000_000
        var clock = start
        var messages: [KafkaOutgoingMessage] = []
        for index in 0..<count {
            clock += [0, hour / 60, hour, 6 * hour, 24 * hour][next(5)]
            var time = clock
            if next(6) == 0 { time -= Int64(next(40 * 24)) * hour }
            let at = Timestamp(microseconds: time).rfc3339
            let id = fixtureUUID(index + 1, prefix: String(format: "%08d", seed % 100_000_000))
            let ws = workspaces[next(3)]
            if next(4) == 0 {
                let user = "user-\(next(4))"
                let value = """
                    {"event_id":"\(id)","timestamp":"\(at)","event_type":"\(["tap", "expand", "scroll"][next(3)])",
                     "user_id":"\(user)","workspace_id":"\(workspaces[0])","session_id":"s-\(next(3))",
                     "capsule_type":"task","duration_ms":\(100 + next(900)),"success":\(next(5) != 0)}
                    """
                messages.append(
                    KafkaOutgoingMessage(
                        topic: topics.prefix + "bte.interaction-events.v1", key: Array(user.utf8),
                        value: Array(value.utf8)))
                continue
            }
            if next(8) == 0 {
                let value = """
                    {"record_type":"user_action","action_id":"\(id)","action_type":"note.added","workspace_id":"\(ws)",
                     "actor_user_id":"\(actors[next(2)])","timestamp":"\(at)","metadata":{}}
                    """
                messages.append(
                    KafkaOutgoingMessage(
                        topic: topics.prefix + "bte.business-events.v1", key: Array(ws.utf8), value: Array(value.utf8)))
                continue
            }
            let entity = fixtureUUID(next(6) + 1, prefix: "eeeeeeee")
            let (type, metadata): (String, String) =
                switch next(11) {
                case 0, 1:
                    (
                        "recommendation.given",
                        #"{"action_type":"\#(["upsell", "call"][next(2)])","expected_value":\#(next(300))}"#
                    )
                case 2, 3:
                    (
                        "recommendation.acted",
                        #"{"outcome":"\#(next(3) == 0 ? "failure" : "success")","realized_value":\#(next(200))}"#
                    )
                case 4:
                    // Page views, some about a deal, and searches: the delivery triggers.
                    [
                        ("page.viewed", "{}"),
                        ("page.viewed", #"{"subject_type":"deal","subject_id":"\#(entity)"}"#),
                        ("search.performed", #"{"query_hash":"\#(String(repeating: "ab", count: 32))"}"#),
                    ][next(3)]
                case 5: (["workflow.started", "workflow.completed"][next(2)], "{}")
                case 6: ("workflow.abandoned", #"{"stage":"s\#(next(3))"}"#)
                case 7: (["deal.created", "deal.stage_changed", "deal.won", "deal.lost"][next(4)], "{}")
                case 8: ("order.created", #"{"customer_id":"c\#(next(3))","amount":10}"#)
                default: ("contact.engaged", #"{"channel":"email"}"#)
                }
            let value = """
                {"record_type":"business_event","event_id":"\(id)","event_type":"\(type)",
                 "entity_type":"\(type.split(separator: ".")[0])","entity_id":"\(entity)","workspace_id":"\(ws)",
                 "sub_vertical_id":"\(subVertical)","actor_user_id":"\(actors[next(2)])",
                 "timestamp":"\(at)","metadata":\(metadata)}
                """
            messages.append(
                KafkaOutgoingMessage(
                    topic: topics.prefix + "bte.business-events.v1", key: Array(ws.utf8), value: Array(value.utf8)))
        }
        return messages
    }

    static func setUp() throws -> (TestDatabase, TestTopics, String) {
        let db = try TestDatabase()
        let topics = try TestTopics()
        _ = try KafkaAdmin(configuration: KafkaClientConfiguration(brokers: topics.brokers)).createTopics(
            outputs.map { KafkaNewTopic(name: topics.prefix + $0, partitions: 3, replicationFactor: 1) })
        try topics.produce(stream(topics, seed: 20_261_205, count: 400))
        let ingestGroup = TestEnvironment.uniqueName("ingest-")
        _ = try ingestUntilIdle(db, topics, group: ingestGroup)
        return (db, topics, ingestGroup)
    }

    static func records(_ topics: TestTopics) throws -> [String] {
        try outputs.flatMap { topic in
            try topics.readAll(topics.prefix + topic).map {
                "\(topic) " + String(decoding: $0.value ?? [], as: UTF8.self)
            }
        }
    }

    /// Records built from other workspaces' successes.
    static func countsPeers(_ record: String) -> Bool {
        record.contains(#""signal_type":"missed_opportunity_count""#)
            || record.contains(#""insight_type":"next_best_action""#)
    }

    static func object(_ record: String) -> [String: Any] {
        let json = record.drop { $0 != " " }.dropFirst()
        return (try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]) ?? [:]
    }

    /// Two groups with different batches publish the same records, each id with one content,
    /// and each entity's last outputs are byte-identical to a sweep at their as_of.
    @Test func batchingsAgreeAndTheLastOutputsEqualTheSweep() throws {
        let (db, topics, ingestGroup) = try Self.setUp()
        defer { db.drop() }
        let env = [
            "BTE_KAFKA_BROKERS": topics.brokers, "BTE_READER_DATABASE_URL": db.readerURL,
            "BTE_KAFKA_SESSION_TIMEOUT_MS": "6000",
        ]
        let common = ["project", "--until-idle", "--topic-prefix", topics.prefix, "--ingest-group", ingestGroup]
        _ = try runBTE(
            common + ["--group", TestEnvironment.uniqueName("projector-a-"), "--max-batch-messages", "7"], env)
        let first = try Self.records(topics)
        _ = try runBTE(common + ["--group", TestEnvironment.uniqueName("projector-b-")], env)
        let both = try Self.records(topics)
        // 300 business events and actions (some duplicates of times), 100 interactions: every
        // stored row is an as_of point.
        #expect(first.filter { $0.hasPrefix("bte.behavioral-vectors.v1 ") }.count > 50)
        // Page views and searches decided deliveries, the same in both runs.
        #expect(
            first.filter { $0.hasPrefix("bte.insight-deliveries.v1 ") && $0.contains(#""outcome":"delivered""#) }
                .count > 0)
        #expect(both.count == 2 * first.count)
        #expect(Set(both) == Set(first))
        var contents: [String: Set<String>] = [:]
        for record in first {
            let object = Self.object(record)
            contents["\(record.prefix { $0 != " " }) \(object["id"] as? String ?? "")", default: []].insert(record)
        }
        #expect(contents.values.allSatisfy { $0.count == 1 })

        // The last as_of of each workspace (signals, insights) and user (vector) against the sweep.
        var lastAsOf: [String: String] = [:]
        for record in first {
            let object = Self.object(record)
            let entity =
                (object["entity_id"] as? String) ?? (object["user_id"] as? String).map {
                    "\(object["workspace_id"] as? String ?? "")/\($0)"
                } ?? (object["workspace_id"] as? String ?? "")
            let asOf = object["as_of"] as? String ?? ""
            if asOf > lastAsOf[entity, default: ""] { lastAsOf[entity] = asOf }
        }
        var sweep = Sweep(brokers: topics.brokers, readerURL: db.readerURL, logger: TestEnvironment.logger)
        sweep.topicPrefix = topics.prefix
        var compared = 0
        for (entity, asOf) in lastAsOf.sorted(by: { $0.key < $1.key }) {
            let time = try #require(Timestamp(rfc3339: asOf))
            let swept = try sweep.compute(asOf: time)
            let projected = Set(
                first.filter {
                    let object = Self.object($0)
                    let owner =
                        (object["entity_id"] as? String) ?? (object["user_id"] as? String).map {
                            "\(object["workspace_id"] as? String ?? "")/\($0)"
                        } ?? (object["workspace_id"] as? String ?? "")
                    return owner == entity && object["as_of"] as? String == asOf
                })
            let expected = Set(
                swept.records.filter { $0.workspaceID == entity }.map {
                    "bte.signals.v1 " + String(decoding: $0.json(), as: UTF8.self)
                }
                    + swept.insights.filter { $0.workspaceID == entity }.map {
                        "bte.insights.v1 " + String(decoding: $0.json(), as: UTF8.self)
                    }
                    + swept.vectors.filter { String(decoding: $0.key ?? [], as: UTF8.self) == entity }.map {
                        "bte.behavioral-vectors.v1 " + String(decoding: $0.value ?? [], as: UTF8.self)
                    })
            #expect(!projected.isEmpty)
            // A row counts the successes stored before it; the sweep, every one stored when it
            // runs (PeerOrderTests checks the former by hand).
            #expect(
                projected.filter { !Self.countsPeers($0) } == expected.filter { !Self.countsPeers($0) },
                "\(entity) as of \(asOf)")
            compared += 1
        }
        // Three workspaces and four users.
        #expect(compared == 7)
    }

    /// A projector killed with SIGKILL mid-stream and started again publishes no record that a
    /// clean run does not (duplicates of identical records at most) and every record it does.
    @Test func aKilledProjectorResumesWithTheSameRecords() throws {
        let (db, topics, ingestGroup) = try Self.setUp()
        defer { db.drop() }
        let env = [
            "BTE_KAFKA_BROKERS": topics.brokers, "BTE_READER_DATABASE_URL": db.readerURL,
            "BTE_KAFKA_SESSION_TIMEOUT_MS": "6000",
        ]
        let common = ["project", "--topic-prefix", topics.prefix, "--ingest-group", ingestGroup]
        _ = try runBTE(common + ["--until-idle", "--group", TestEnvironment.uniqueName("projector-clean-")], env)
        let clean = try Self.records(topics)
        let group = TestEnvironment.uniqueName("projector-killed-")
        let killed = try BTEProcess(common + ["--group", group, "--max-batch-messages", "5"], environment: env)
        let started = try eventually(timeout: 60) {
            try topics.readAll(topics.prefix + "bte.signals.v1").count > clean.count / 3
        }
        #expect(started)
        killed.signal(SIGKILL)
        _ = killed.wait(timeout: 10)
        _ = try runBTE(common + ["--until-idle", "--group", group], env)
        var counts: [String: Int] = [:]
        for record in try Self.records(topics) { counts[record, default: 0] += 1 }
        for record in clean { counts[record, default: 0] -= 1 }
        #expect(counts.values.allSatisfy { $0 >= 0 })
        let resumed = Set(counts.filter { $0.value > 0 }.keys)
        #expect(resumed == Set(clean))
    }

    /// Two members sharing the group (a rebalance when the second joins, another when the first
    /// leaves) and a PostgreSQL restart under them: every record of a clean run, none other.
    @Test func twoMembersAndAPostgresRestartPublishTheCleanRecords() throws {
        guard let pgDir = ProcessInfo.processInfo.environment["BTE_TEST_PG_DIR"] else {
            Issue.record("BTE_TEST_PG_DIR not set: run with scripts/test.sh")
            return
        }
        let (db, topics, ingestGroup) = try Self.setUp()
        defer { db.drop() }
        let env = [
            "BTE_KAFKA_BROKERS": topics.brokers, "BTE_READER_DATABASE_URL": db.readerURL,
            "BTE_KAFKA_SESSION_TIMEOUT_MS": "6000",
        ]
        let common = ["project", "--topic-prefix", topics.prefix, "--ingest-group", ingestGroup]
        _ = try runBTE(common + ["--until-idle", "--group", TestEnvironment.uniqueName("projector-clean-")], env)
        let clean = try Self.records(topics)
        let group = TestEnvironment.uniqueName("projector-pair-")
        let member = common + ["--group", group, "--max-batch-messages", "3"]
        let first = try BTEProcess(member, environment: env)
        defer { if first.process.isRunning { first.signal(SIGKILL) } }
        #expect(try eventually(timeout: 60) { try Self.records(topics).count > clean.count + 20 })
        let second = try BTEProcess(member, environment: env)
        defer { if second.process.isRunning { second.signal(SIGKILL) } }
        Thread.sleep(forTimeInterval: 3)
        let startOptions =
            try String(contentsOfFile: pgDir + "/postmaster.opts", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ", maxSplits: 1).last.map(String.init)
            ?? ""
        #expect(runAsPostgres(["/usr/lib/postgresql/15/bin/pg_ctl", "-D", pgDir, "-m", "fast", "-w", "stop"]) == 0)
        Thread.sleep(forTimeInterval: 2)
        #expect(
            runAsPostgres([
                "/usr/lib/postgresql/15/bin/pg_ctl", "-D", pgDir, "-w", "-l", pgDir + "/log", "-o", startOptions,
                "start",
            ]) == 0)
        first.signal(SIGTERM)
        #expect(first.wait(timeout: 60) == 0, "\(first.log)")
        let cleanSet = Set(clean)
        func resumed() throws -> [String: Int] {
            var counts: [String: Int] = [:]
            for record in try Self.records(topics) { counts[record, default: 0] += 1 }
            for record in clean { counts[record, default: 0] -= 1 }
            return counts
        }
        #expect(try eventually(timeout: 120) { Set(try resumed().filter { $0.value > 0 }.keys) == cleanSet })
        second.signal(SIGTERM)
        #expect(second.wait(timeout: 60) == 0, "\(second.log)")
        let counts = try resumed()
        #expect(counts.values.allSatisfy { $0 >= 0 })
        #expect(Set(counts.filter { $0.value > 0 }.keys) == cleanSet)
    }
}

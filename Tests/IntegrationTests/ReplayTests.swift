import BTEStore
import BTETestSupport
import Foundation
import Kafka
import Testing

/// `bte replay` against the real servers: dry run, execute, the fence against live workers,
/// and each target.
@Suite(.serialized) struct ReplayTests {
    static let interaction = "bte.interaction-events.v1"

    /// `count` interaction events spread round-robin over partitions 0, 1 and 2.
    static func interactions(_ topics: TestTopics, count: Int, from first: Int = 1) -> [KafkaOutgoingMessage] {
        (first..<(first + count)).map { n in
            let value = """
                {"event_id":"\(fixtureUUID(n, prefix: "77777777"))","timestamp":"2026-03-01T10:00:00Z",
                 "event_type":"tap","user_id":"user-\(n % 4)","session_id":"s-\(n % 4)"}
                """
            return KafkaOutgoingMessage(
                topic: topics.prefix + interaction, key: Array("user-\(n % 4)".utf8), value: Array(value.utf8),
                partition: Int32(n % 3))
        }
    }

    /// `bte replay`; an `--execute` that names no reason gets one (executing needs it).
    static func replay(_ arguments: [String], _ db: TestDatabase, _ topics: TestTopics) throws -> BTEProcess {
        let executes = arguments.contains("--execute")
        let reason =
            (executes && !arguments.contains("--why") ? ["--why", "test"] : [])
            + (executes && !arguments.contains("--by") ? ["--by", "test"] : [])
        let process = try BTEProcess(
            ["replay"] + arguments + reason + [
                "--brokers", topics.brokers, "--database-url", db.ingestURL, "--topic-prefix", topics.prefix,
            ])
        _ = process.wait(timeout: 120)
        return process
    }

    static func json(_ process: BTEProcess) throws -> [String: Any] {
        let line = process.log.split(separator: "\n").first { $0.hasPrefix("{") } ?? ""
        return try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
    }

    static func partitions(_ plan: [String: Any]) -> [String: [String: Any]] {
        var result: [String: [String: Any]] = [:]
        for row in plan["partitions"] as? [[String: Any]] ?? [] {
            result["\(row["topic"] as? String ?? "")[\(row["partition"] as? Int ?? -1)]"] = row
        }
        return result
    }

    static func storedOffsets(_ db: TestDatabase, group: String) throws -> [String: Int64] {
        var result: [String: Int64] = [:]
        for row in try db.admin().execute(
            "SELECT topic, partition, next_offset FROM bte.ingest_offsets WHERE consumer_group = $1", [group]
        ).rows {
            result["\(row[0] ?? "")[\(row[1] ?? "")]"] = Int64(row[2] ?? "")
        }
        return result
    }

    @Test func ingestReplayDryRunChangesNothingAndExecuteReingestsAsDuplicates() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        try topics.produce(Self.interactions(topics, count: 30))
        let group = TestEnvironment.uniqueName("ingest-")
        let first = try ingestUntilIdle(db, topics, group: group)
        #expect(first.totalStored == 30)
        let topic = topics.prefix + Self.interaction
        let tenEach = [topic + "[0]": Int64(10), topic + "[1]": 10, topic + "[2]": 10]
        #expect(try Self.storedOffsets(db, group: group) == tenEach)

        // Dry run over the group's default topics: its three input topics, 3 partitions each.
        let all = try Self.replay([group, "--to-earliest", "--format", "json"], db, topics)
        #expect(all.process.terminationStatus == 0, "\(all.log)")
        let allPlan = try Self.json(all)
        #expect(allPlan["offsets_in"] as? String == "postgresql")
        #expect(allPlan["executed"] as? Bool == false)
        #expect(Self.partitions(allPlan).count == 9, "\(all.log)")

        // One topic: 10 stored in each partition, all 10 to re-process.
        let dry = try Self.replay([group, "--to-earliest", "--topic", topic, "--format", "json"], db, topics)
        #expect(dry.process.terminationStatus == 0, "\(dry.log)")
        let rows = Self.partitions(try Self.json(dry))
        #expect(rows.count == 3)
        for (_, row) in rows {
            #expect(row["current"] as? Int == 10)
            #expect(row["target"] as? Int == 0)
            #expect(row["end"] as? Int == 10)
            #expect(row["reprocess"] as? Int == 10)
            #expect(row["skip"] as? Int == 0)
        }
        let table = try Self.replay([group, "--to-earliest", "--topic", topic], db, topics)
        #expect(
            table.log.contains(
                "total: 30 to re-process, 0 to skip (dry run: --execute --why TEXT [--by NAME] moves the offsets to "
                    + "target, records who and why in bte.replay_log, and refuses while the group has live members)"),
            "\(table.log)")
        #expect(try Self.storedOffsets(db, group: group) == tenEach)
        #expect(try db.count("SELECT count(*) FROM bte.replay_log") == 0)

        // The log is permanent: executing needs a reason and someone who asks.
        let unexplained = try BTEProcess(
            [
                "replay", group, "--to-earliest", "--topic", topic, "--execute", "--by", "alice", "--brokers",
                topics.brokers, "--database-url", db.ingestURL, "--topic-prefix", topics.prefix,
            ])
        #expect(unexplained.wait(timeout: 60) == 1)
        #expect(unexplained.log.contains("--execute needs --why TEXT"), "\(unexplained.log)")
        let anonymous = try BTEProcess(
            [
                "replay", group, "--to-earliest", "--topic", topic, "--execute", "--why", "x", "--brokers",
                topics.brokers, "--database-url", db.ingestURL, "--topic-prefix", topics.prefix,
            ], environment: ["USER": ""])
        #expect(anonymous.wait(timeout: 60) == 1)
        #expect(anonymous.log.contains("--execute needs --by NAME"), "\(anonymous.log)")
        #expect(try Self.storedOffsets(db, group: group) == tenEach)
        #expect(try db.count("SELECT count(*) FROM bte.replay_log") == 0)

        let executed = try Self.replay(
            [
                group, "--to-earliest", "--topic", topic, "--execute", "--by", "alice", "--why", "bug 42 fixed",
                "--format", "json",
            ],
            db, topics)
        #expect(executed.process.terminationStatus == 0, "\(executed.log)")
        #expect(try Self.json(executed)["executed"] as? Bool == true)
        #expect(try Self.storedOffsets(db, group: group) == [topic + "[0]": 0, topic + "[1]": 0, topic + "[2]": 0])
        let record = try db.admin().execute(
            "SELECT consumer_group, offsets_in, target, requested_by, reason, before::text, after::text "
                + "FROM bte.replay_log"
        ).rows
        #expect(record.count == 1)
        #expect(record.first?[0] == group)
        #expect(record.first?[1] == "postgresql")
        #expect(record.first?[2] == "--to-earliest")
        #expect(record.first?[3] == "alice")
        #expect(record.first?[4] == "bug 42 fixed")
        #expect(record.first?[5] == "{\"\(topic)[0]\": 10, \"\(topic)[1]\": 10, \"\(topic)[2]\": 10}")
        #expect(record.first?[6] == "{\"\(topic)[0]\": 0, \"\(topic)[1]\": 0, \"\(topic)[2]\": 0}")
        // The record is as immutable as the logs.
        #expect(throws: (any Error).self) { try db.admin().execute("UPDATE bte.replay_log SET reason = 'x'") }
        #expect(throws: (any Error).self) { try db.admin().execute("DELETE FROM bte.replay_log") }

        // Re-ingested: 30 duplicates, nothing stored twice.
        let second = try ingestUntilIdle(db, topics, group: group)
        #expect(second.totalStored == 0)
        #expect(second.consumed == 30)
        #expect(try db.count("SELECT count(*) FROM core.interaction_events") == 30)
        #expect(try Self.storedOffsets(db, group: group) == tenEach)
    }

    @Test func executeRefusesWhileAWorkerOfTheGroupRuns() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        try topics.produce(Self.interactions(topics, count: 30))
        let group = TestEnvironment.uniqueName("ingest-")
        let worker = try BTEProcess([
            "ingest", "--brokers", topics.brokers, "--database-url", db.ingestURL, "--topic-prefix", topics.prefix,
            "--group", group, "--session-timeout-ms", "6000",
        ])
        #expect(try eventually(timeout: 60) { try db.count("SELECT count(*) FROM core.interaction_events") == 30 })
        let topic = topics.prefix + Self.interaction
        let refused = try Self.replay([group, "--to-earliest", "--topic", topic, "--execute"], db, topics)
        #expect(refused.process.terminationStatus == 1, "\(refused.log)")
        // Refused by whichever fence answers first: the group's live member in Kafka (brokers
        // that report members of groups without committed offsets), or the worker's lock in
        // PostgreSQL, which every ingest worker holds.
        #expect(
            refused.log.hasPrefix("bte: error: replay_group_active: group \(group) has 1 live member")
                || refused.log.hasPrefix("bte: error: store_group_locked: workers of group \(group) are running"),
            "\(refused.log)")
        #expect(refused.log.split(separator: "\n").count == 1, "\(refused.log)")
        #expect(try Self.storedOffsets(db, group: group)[topic + "[0]"] == 10)
        #expect(try db.count("SELECT count(*) FROM bte.replay_log") == 0)
        worker.signal(SIGTERM)
        #expect(worker.wait(timeout: 60) == 0, "\(worker.log)")

        // A worker that holds the group's lock in PostgreSQL (here one that is not, or no
        // longer, a member in Kafka) fences the replay as well.
        do {
            let store = try IngestStore(url: db.ingestURL, group: group)
            let locked = try Self.replay([group, "--to-earliest", "--topic", topic, "--execute"], db, topics)
            #expect(locked.process.terminationStatus == 1, "\(locked.log)")
            #expect(
                locked.log.hasPrefix("bte: error: store_group_locked: workers of group \(group) are running"),
                "\(locked.log)")
            #expect(try Self.storedOffsets(db, group: group)[topic + "[0]"] == 10)
            withExtendedLifetime(store) {}
        }

        // With every worker gone, the same kind of replay goes through.
        let applied = try Self.replay([group, "--to-offset", "4", "--topic", topic, "--execute"], db, topics)
        #expect(applied.process.terminationStatus == 0, "\(applied.log)")
        #expect(try Self.storedOffsets(db, group: group) == [topic + "[0]": 4, topic + "[1]": 4, topic + "[2]": 4])
        #expect(try db.count("SELECT count(*) FROM bte.replay_log") == 1)
    }

    @Test func projectorReplayRecommitsInKafkaAndRepublishesIdenticalBytes() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        try ReplayIdentityTests.createOutputTopics(topics)
        try topics.produce(ReplayIdentityTests.inputs(topics))
        let ingestGroup = TestEnvironment.uniqueName("ingest-")
        _ = try ingestUntilIdle(db, topics, group: ingestGroup)
        let env = [
            "BTE_KAFKA_BROKERS": topics.brokers, "BTE_READER_DATABASE_URL": db.readerURL,
            "BTE_KAFKA_SESSION_TIMEOUT_MS": "6000",
        ]
        let group = TestEnvironment.uniqueName("projector-")
        let project = [
            "project", "--until-idle", "--topic-prefix", topics.prefix, "--ingest-group", ingestGroup, "--group", group,
        ]
        _ = try runBTE(project, env)
        let first = try ReplayIdentityTests.published(topics)
        #expect(!first.isEmpty)

        let executed = try Self.replay([group, "--to-earliest", "--execute", "--format", "json"], db, topics)
        #expect(executed.process.terminationStatus == 0, "\(executed.log)")
        let plan = try Self.json(executed)
        #expect(plan["offsets_in"] as? String == "kafka")
        let rows = Self.partitions(plan)
        // The projector's topics: business and interaction events, 3 partitions each, every
        // partition committed at its end and sent back to 0.
        #expect(rows.count == 6, "\(executed.log)")
        #expect(
            rows.keys.allSatisfy { $0.contains("bte.business-events.v1[") || $0.contains("bte.interaction-events.v1[") }
        )
        let total = rows.values.reduce(0) { $0 + ($1["end"] as? Int ?? 0) }
        #expect(total == ReplayIdentityTests.inputs(topics).count)
        for (_, row) in rows {
            #expect(row["current"] as? Int == row["end"] as? Int)
            #expect(row["target"] as? Int == 0)
        }
        #expect(try db.count("SELECT count(*) FROM bte.replay_log WHERE offsets_in = 'kafka'") == 1)
        // Kafka holds the new offsets.
        let after = try Self.replay([group, "--to-earliest", "--format", "json"], db, topics)
        #expect(Self.partitions(try Self.json(after)).values.allSatisfy { $0["current"] as? Int == 0 }, "\(after.log)")

        // Projected again: every output a second time, byte for byte.
        _ = try runBTE(project, env)
        let again = try ReplayIdentityTests.published(topics)
        #expect(Set(again.keys) == Set(first.keys))
        for (id, copies) in again {
            #expect(copies.count == 2 * (first[id]?.count ?? 0), "\(id)")
            #expect(Set(copies).count == 1, "\(id) differs after the replay")
        }
    }

    @Test func executeRefusesWhileAProjectorOfTheGroupRuns() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        try ReplayIdentityTests.createOutputTopics(topics)
        try topics.produce(ReplayIdentityTests.inputs(topics))
        let ingestGroup = TestEnvironment.uniqueName("ingest-")
        _ = try ingestUntilIdle(db, topics, group: ingestGroup)
        let group = TestEnvironment.uniqueName("projector-")
        let projector = try BTEProcess(
            [
                "project", "--topic-prefix", topics.prefix, "--ingest-group", ingestGroup, "--group", group,
                "--session-timeout-ms", "6000",
            ],
            environment: ["BTE_KAFKA_BROKERS": topics.brokers, "BTE_READER_DATABASE_URL": db.readerURL])
        // Working: it has published outputs.
        #expect(
            try eventually(timeout: 60) {
                !(try topics.readAll(topics.prefix + "bte.behavioral-vectors.v1")).isEmpty
            })
        let refused = try Self.replay([group, "--to-earliest", "--execute"], db, topics)
        #expect(refused.process.terminationStatus == 1, "\(refused.log)")
        #expect(
            refused.log.hasPrefix("bte: error: replay_group_active: group \(group) has 1 live member")
                || refused.log.hasPrefix("bte: error: store_group_locked: workers of group \(group) are running"),
            "\(refused.log)")
        #expect(try db.count("SELECT count(*) FROM bte.replay_log") == 0)
        projector.signal(SIGTERM)
        #expect(projector.wait(timeout: 60) == 0, "\(projector.log)")
    }

    @Test func timeTargetsResolveToTheFirstMessageAtTheInstantInAnyZone() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let topic = topics.prefix + Self.interaction
        // Offsets 0–4 before the instant, 5–9 after it, all in partition 0.
        let early = Self.interactions(topics, count: 5).map {
            KafkaOutgoingMessage(topic: $0.topic, key: $0.key, value: $0.value, partition: 0)
        }
        let late = Self.interactions(topics, count: 5, from: 6).map {
            KafkaOutgoingMessage(topic: $0.topic, key: $0.key, value: $0.value, partition: 0)
        }
        try topics.produce(early)
        Thread.sleep(forTimeInterval: 1.5)
        let instant = Date()
        Thread.sleep(forTimeInterval: 1.5)
        try topics.produce(late)
        // The same instant written in a zone two hours east of UTC.
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(secondsFromGMT: 7_200)
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss.SSSxxx"
        let east = formatter.string(from: instant)
        #expect(east.hasSuffix("+02:00"))
        // A group with no offsets anywhere: Kafka is its home, it would start at 0.
        let group = TestEnvironment.uniqueName("fresh-")
        func target(_ arguments: [String]) throws -> Int? {
            let process = try Self.replay([group, "--topic", topic + ":0", "--format", "json"] + arguments, db, topics)
            #expect(process.process.terminationStatus == 0, "\(arguments): \(process.log)")
            return Self.partitions(try Self.json(process))[topic + "[0]"]?["target"] as? Int
        }
        #expect(try target(["--to-datetime", east]) == 5)
        #expect(try target(["--to-datetime", "2000-01-01T00:00:00Z"]) == 0)
        #expect(try target(["--to-datetime", "2100-01-01T00:00:00+00:00"]) == 10)
        #expect(try target(["--by-duration", "1h"]) == 0)
        #expect(try target(["--to-latest"]) == 10)
        #expect(try target(["--to-offset", "7"]) == 7)
        #expect(try target(["--shift-by", "+3"]) == 3)
        #expect(try target(["--shift-by", "-3"]) == 0)

        let local = try Self.replay([group, "--to-datetime", "2026-03-01T10:00:00", "--topic", topic], db, topics)
        #expect(local.process.terminationStatus == 1)
        #expect(local.log.hasPrefix("bte: error: replay_invalid_target: --to-datetime takes RFC 3339 with Z"))
        let two = try Self.replay([group, "--to-earliest", "--to-latest"], db, topics)
        #expect(two.process.terminationStatus == 1)
        #expect(two.log.hasPrefix("bte: error: bte_usage: give exactly one target"), "\(two.log)")
        let missing = try Self.replay([group, "--to-earliest", "--topic", "no-such-topic-\(group)"], db, topics)
        #expect(missing.process.terminationStatus == 1)
        #expect(missing.log.contains("replay_unknown_topic"), "\(missing.log)")
    }
}

import BTEDomain
import BTEIngest
import BTEStore
import BTETestSupport
import BTEWorker
import Foundation
import Kafka
import Postgres
import Testing

/// Output topics with the test's prefix (the projectors' topics, which `TestTopics` leaves out).
func createOutputTopics(_ topics: TestTopics) throws {
    let admin = try KafkaAdmin(configuration: KafkaClientConfiguration(brokers: topics.brokers))
    _ = try admin.createTopics(
        SinkWorker.topics.map {
            KafkaNewTopic(name: $0.name(prefix: topics.prefix), partitions: 3, replicationFactor: 1)
        })
}

func sinkUntilIdle(_ db: TestDatabase, _ topics: TestTopics, group: String = "bte-sink") throws -> SinkSummary {
    var config = IngestConfiguration(brokers: topics.brokers, databaseURL: db.ingestURL)
    config.group = group
    config.topicPrefix = topics.prefix
    config.untilIdle = true
    config.sessionTimeoutMilliseconds = 6_000
    return try SinkWorker(configuration: config, logger: TestEnvironment.logger).run(stop: StopSignal())
}

/// Hand-written output records, as the projectors publish them.
enum OutputRecords {
    static func signal(
        workspace: String, type: String, value: String, asOf: String, version: Int = 1, label: String? = nil
    )
        -> String
    {
        let id = UUIDv5Text.make("signal|\(workspace)|\(type)|\(asOf)|\(version)")
        let labelField = label.map { ",\"label\":\"\($0)\"" } ?? ""
        return """
            {"id":"\(id)","entity_type":"workspace","entity_id":"\(workspace)","signal_type":"\(type)",\
            "signal_value":\(value)\(labelField),"as_of":"\(asOf)","thresholds_version":\(version),\
            "computed_from":4,"engine_version":"test"}
            """
    }

    static func vector(
        user: String, workspace: String = "00000000-0000-0000-0000-000000000000", asOf: String, score: String,
        sessions: Int
    ) -> String {
        let id = UUIDv5Text.make("vector|\(workspace)|\(user)|\(asOf)")
        return """
            {"id":"\(id)","workspace_id":"\(workspace)","user_id":"\(user)","computed_at":"\(asOf)",\
            "version":"1.0","expertise_level":"novice",\
            "total_interactions":3,"total_sessions":\(sessions),"avg_session_duration_minutes":1.5,\
            "engagement_metrics":{"total_sessions":\(sessions),"avg_session_duration_minutes":1.5,\
            "avg_interactions_per_session":3,"engagement_score":\(score),"last_active":"\(asOf)"},\
            "as_of":"\(asOf)","thresholds_version":1,"computed_from":3,"engine_version":"test"}
            """
    }

    static func insight(workspace: String, type: String, asOf: String) -> String {
        let id = insightID(workspace: workspace, type: type, asOf: asOf)
        return """
            {"id":"\(id)","workspace_id":"\(workspace)","insight_type":"\(type)","priority":"high",\
            "message":"3 deals in your pipeline have stalled for 2+ weeks","evidence":{"deals":3},\
            "as_of":"\(asOf)","thresholds_version":1,"computed_from":9,"engine_version":"test"}
            """
    }

    static func insightID(workspace: String, type: String, asOf: String) -> String {
        UUIDv5Text.make("insight|\(workspace)|\(type)|\(asOf)")
    }

    static func message(_ topic: OutputTopic, _ topics: TestTopics, key: String, _ value: String)
        -> KafkaOutgoingMessage
    {
        KafkaOutgoingMessage(topic: topic.name(prefix: topics.prefix), key: Array(key.utf8), value: Array(value.utf8))
    }
}

/// A deterministic UUID-shaped id for fixtures (the value only has to be a UUID and stable).
enum UUIDv5Text {
    static func make(_ name: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var hash2: UInt64 = 0x8422_2325_cbf2_9ce4
        for byte in name.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
            hash2 = (hash2 ^ UInt64(byte)) &* 0x100_0000_01b3 &+ 7
        }
        let hex = String(format: "%016llx%016llx", hash, hash2)
        let chars = Array(hex)
        return
            "\(String(chars[0..<8]))-\(String(chars[8..<12]))-4\(String(chars[13..<16]))-"
            + "8\(String(chars[17..<20]))-\(String(chars[20..<32]))"
    }
}

@Suite(.serialized) struct SinkTests {
    static let workspace = "11111111-2222-4333-8444-555555555555"

    @Test func outputsAreStoredExactlyOnceLatestVectorWinsAndBadRecordsAreDeadLettered() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        try createOutputTopics(topics)
        let w = Self.workspace
        try topics.produce([
            OutputRecords.message(
                .signals, topics, key: w,
                OutputRecords.signal(workspace: w, type: "momentum", value: "1.5", asOf: "2026-11-01T00:00:00Z")),
            OutputRecords.message(
                .signals, topics, key: w,
                OutputRecords.signal(workspace: w, type: "momentum", value: "2", asOf: "2026-11-02T00:00:00Z")),
            OutputRecords.message(.signals, topics, key: w, "not json"),
            // Newer first, then older: the older must not replace it as the latest.
            OutputRecords.message(
                .behavioralVectors, topics, key: "user-1",
                OutputRecords.vector(user: "user-1", asOf: "2026-11-02T00:00:00Z", score: "0.5", sessions: 2)),
            OutputRecords.message(
                .behavioralVectors, topics, key: "user-1",
                OutputRecords.vector(user: "user-1", asOf: "2026-11-01T00:00:00Z", score: "0.25", sessions: 1)),
            OutputRecords.message(
                .insights, topics, key: w,
                OutputRecords.insight(workspace: w, type: "deal_stalled", asOf: "2026-11-02T00:00:00Z")),
        ])
        let first = try sinkUntilIdle(db, topics)
        // 6 consumed; 2 signal values, 2 vectors in the history, 1 insight; 1 dead-lettered.
        #expect(first.consumed == 6)
        #expect(first.stored.signals == 2 && first.stored.vectors == 2 && first.stored.insights == 1, "\(first)")
        #expect(first.rejected == [.invalidJSON: 1])
        #expect(try db.count("SELECT count(*) FROM bte.signal_values") == 2)
        #expect(try db.count("SELECT count(*) FROM bte.bv_history") == 2)
        #expect(try db.count("SELECT count(*) FROM bte.insights") == 1)
        let latest = try db.admin().execute("SELECT as_of AT TIME ZONE 'UTC', record FROM bte.behavioral_vectors").rows
        #expect(latest.count == 1)
        #expect(latest.first?[0] == "2026-11-02 00:00:00")
        // Stored as published, byte for byte.
        #expect(
            latest.first?[1]
                == OutputRecords.vector(user: "user-1", asOf: "2026-11-02T00:00:00Z", score: "0.5", sessions: 2))
        // Offsets of all six messages are stored in PostgreSQL under bte-sink.
        #expect(try db.count("SELECT sum(next_offset) FROM bte.ingest_offsets WHERE consumer_group = 'bte-sink'") == 6)
        let dead = try topics.readAll(OutputTopic.deadLetter.name(prefix: topics.prefix))
        #expect(dead.count == 1)
        let deadText = String(decoding: dead.first?.value ?? [], as: UTF8.self)
        #expect(deadText.contains(#""error_code":"invalid_json""#), "\(deadText)")

        // Everything read again (`bte replay bte-sink --to-earliest`: offsets in PostgreSQL, over
        // the output topics): nothing new is stored.
        let replay = try ReplayTests.replay(
            ["bte-sink", "--to-earliest", "--execute", "--by", "test", "--why", "re-sink", "--format", "json"], db,
            topics)
        #expect(replay.process.terminationStatus == 0, "\(replay.log)")
        #expect(replay.log.contains(#""offsets_in":"postgresql""#), "\(replay.log)")
        #expect(try db.count("SELECT sum(next_offset) FROM bte.ingest_offsets WHERE consumer_group = 'bte-sink'") == 0)
        let again = try sinkUntilIdle(db, topics)
        #expect(again.consumed == 6)
        #expect(again.stored == SinkOutcome(), "\(again)")
        #expect(try db.count("SELECT count(*) FROM bte.signal_values") == 2)
        #expect(try db.count("SELECT count(*) FROM bte.bv_history") == 2)
        #expect(try db.count("SELECT count(*) FROM bte.insights") == 1)
    }

    /// Records no projector writes but anyone may produce: a number or time PostgreSQL can't
    /// hold, a NUL, a vector naming no workspace. Each is dead-lettered with its code and the
    /// rest of the batch is stored; the sink neither exits nor stalls on them.
    @Test func poisonRecordsAreDeadLetteredAndTheRestOfTheBatchStored() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        try createOutputTopics(topics)
        let w = Self.workspace
        let asOf = "2026-11-02T00:00:00Z"
        func signal(_ type: String, value: String = "1", version: Int = 1, at: String = asOf) -> KafkaOutgoingMessage {
            OutputRecords.message(
                .signals, topics, key: w,
                OutputRecords.signal(workspace: w, type: type, value: value, asOf: at, version: version))
        }
        let unscoped = OutputRecords.vector(user: "u-1", asOf: asOf, score: "0.5", sessions: 1)
            .replacingOccurrences(of: #""workspace_id":"00000000-0000-0000-0000-000000000000","#, with: "")
        try topics.produce([
            signal("good_before"),
            signal("huge", value: "1e400"),  // a double's infinity: invalid_value
            signal("version", version: 3_000_000_000),  // over int4: invalid_value
            signal("far", at: "9999-12-31T00:00:00Z"),  // outside 1970..2100: timestamp_out_of_range
            signal(#"nul\u0000type"#),  // an escaped NUL: the parser refuses it, invalid_json
            // Passes as a finite double here (0) but PostgreSQL refuses the text as out of range:
            // isolated under savepoints as storage_rejected.
            signal("tiny", value: "1e-400"),
            OutputRecords.message(.behavioralVectors, topics, key: "u-1", unscoped),  // missing_field
            // Insights: a version over int4 (invalid_value) and an as_of in 9999 (out of range).
            OutputRecords.message(
                .insights, topics, key: w,
                OutputRecords.insight(workspace: w, type: "deal_stalled", asOf: asOf)
                    .replacingOccurrences(of: #""thresholds_version":1"#, with: #""thresholds_version":3000000000"#)),
            OutputRecords.message(
                .insights, topics, key: w,
                OutputRecords.insight(workspace: w, type: "deal_stalled", asOf: "9999-01-01T00:00:00Z")),
            // A vector whose numbers no double holds is kept as the text it is: stored, not refused.
            OutputRecords.message(
                .behavioralVectors, topics, key: "\(w)/u-2",
                OutputRecords.vector(user: "u-2", workspace: w, asOf: asOf, score: "1e400", sessions: 1)
                    .replacingOccurrences(of: #""total_interactions":3"#, with: #""total_interactions":1e400"#)),
            signal("good_after"),
        ])
        let summary = try sinkUntilIdle(db, topics)
        #expect(summary.consumed == 11)
        #expect(
            summary.rejected == [
                .invalidValue: 3, .timestampOutOfRange: 2, .invalidJSON: 1, .storageRejected: 1, .missingField: 1,
            ], "\(summary)")
        #expect(
            try db.admin().execute("SELECT signal_type FROM bte.signal_values ORDER BY 1").rows.map { $0[0] }
                == ["good_after", "good_before"])
        #expect(try db.count("SELECT count(*) FROM bte.insights") == 0)
        #expect(try db.count("SELECT count(*) FROM bte.behavioral_vectors WHERE user_id = 'u-2'") == 1)
        #expect(try db.count("SELECT sum(next_offset) FROM bte.ingest_offsets WHERE consumer_group = 'bte-sink'") == 11)
        let dead = try topics.readAll(OutputTopic.deadLetter.name(prefix: topics.prefix))
        #expect(dead.count == 8)
    }

    @Test func theSinkRoleCannotWriteTheLogs() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let connection = try PostgresConnection(url: db.ingestURL)
        try connection.execute("SET ROLE bte_sink")
        #expect(throws: PostgresError.self) {
            try connection.execute(
                """
                INSERT INTO core.user_actions (action_id, action_type, workspace_id, actor_user_id, timestamp)
                VALUES (gen_random_uuid(), 'x', gen_random_uuid(), gen_random_uuid(), now())
                """)
        }
        #expect(throws: PostgresError.self) {
            try connection.execute(
                """
                INSERT INTO bte.rejected_events
                    (source_topic, source_partition, source_offset, error_code, error_message)
                VALUES ('t', 0, 0, 'x', 'y')
                """)
        }
    }

    @Test func retentionDropsOnlyMonthsOlderThanTheOnesKept() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        try createOutputTopics(topics)
        let w = Self.workspace
        // This month, 17 months back (the oldest of 18 kept) and 18 months back (dropped).
        let calendar = Calendar(identifier: .gregorian)
        var utc = calendar
        utc.timeZone = TimeZone(identifier: "UTC") ?? .current
        let thisMonth = utc.date(from: utc.dateComponents([.year, .month], from: Date())) ?? Date()
        func month(_ back: Int) -> (asOf: String, name: String) {
            let date = utc.date(byAdding: .month, value: -back, to: thisMonth) ?? thisMonth
            let parts = utc.dateComponents([.year, .month], from: date)
            let year = parts.year ?? 0
            let number = parts.month ?? 0
            return (
                String(format: "%04d-%02d-15T00:00:00Z", year, number),
                String(format: "signal_values_%04d_%02d", year, number)
            )
        }
        let kept = [month(0), month(17)]
        let dropped = month(18)
        try topics.produce(
            (kept + [dropped]).map {
                OutputRecords.message(
                    .signals, topics, key: w,
                    OutputRecords.signal(workspace: w, type: "momentum", value: "1", asOf: $0.asOf))
            })
        _ = try sinkUntilIdle(db, topics)
        #expect(try db.count("SELECT count(*) FROM bte.signal_values") == 3)

        let dry = try BTEProcess(["sink", "retention", "--database-url", db.ingestURL])
        #expect(dry.wait(timeout: 30) == 0, "\(dry.log)")
        #expect(dry.log.contains("would drop 1 partition(s): \(dropped.name)"), "\(dry.log)")
        #expect(try db.count("SELECT count(*) FROM bte.signal_values") == 3)

        let run = try BTEProcess(["sink", "retention", "--execute", "--database-url", db.ingestURL])
        #expect(run.wait(timeout: 30) == 0, "\(run.log)")
        #expect(run.log.contains("dropped 1 partition(s): \(dropped.name)"), "\(run.log)")
        #expect(try db.count("SELECT count(*) FROM bte.signal_values") == 2)
        #expect(try db.count("SELECT count(*) FROM pg_class WHERE relname = '\(kept[1].name)'") == 1)
    }
}

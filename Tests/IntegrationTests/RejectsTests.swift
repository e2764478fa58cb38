import BTEDomain
import BTEIngest
import BTETestSupport
import BTEWorker
import Foundation
import Kafka
import Testing

/// `bte rejects list|show|redrive` against the real servers.
@Suite(.serialized) struct RejectsTests {
    static let interaction = "bte.interaction-events.v1"

    static func event(_ id: String, _ fields: String) -> [UInt8] {
        Array(
            """
            {"event_id":"\(id)","user_id":"user-1","session_id":"s-1",\(fields)}
            """.utf8)
    }

    static func ingest(_ db: TestDatabase, _ topics: TestTopics, maxMessageBytes: Int) throws -> IngestSummary {
        var config = IngestConfiguration(brokers: topics.brokers, databaseURL: db.ingestURL)
        config.group = TestEnvironment.uniqueName("ingest-")
        config.topicPrefix = topics.prefix
        config.untilIdle = true
        config.sessionTimeoutMilliseconds = 6_000
        config.limits.maxMessageBytes = maxMessageBytes
        return try IngestWorker(configuration: config, logger: TestEnvironment.logger).run(stop: StopSignal())
    }

    static func bte(_ arguments: [String], _ db: TestDatabase) throws -> BTEProcess {
        let process = try BTEProcess(
            arguments, environment: ["BTE_READER_DATABASE_URL": db.readerURL, "BTE_DATABASE_URL": db.ingestURL])
        _ = process.wait(timeout: 120)
        return process
    }

    static func outcomes(_ process: BTEProcess) throws -> [Int64: String] {
        let line = process.log.split(separator: "\n").first { $0.hasPrefix("{") } ?? ""
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
        var result: [Int64: String] = [:]
        for item in object["rejects"] as? [[String: Any]] ?? [] {
            result[Int64(item["reject_id"] as? Int ?? -1)] = item["outcome"] as? String
        }
        return result
    }

    /// A tombstone's reject says so: its value was null, nothing was withheld.
    @Test func aTombstonesRejectSaysItWasNull() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let topic = topics.prefix + "bte.interaction-events.v1"
        try topics.produce([KafkaOutgoingMessage(topic: topic, key: Array("user-1".utf8), value: nil)])
        _ = try Self.ingest(db, topics, maxMessageBytes: 300)
        let tombstone =
            try db.admin().execute(
                "SELECT id FROM bte.rejected_events WHERE error_code = 'tombstone'"
            ).rows.first?[0] ?? ""
        let shownTombstone = try Self.bte(["rejects", "show", tombstone], db)
        #expect(
            shownTombstone.log.contains(
                "payload:     none (the message's value was null: a tombstone); nothing to redrive"),
            "\(shownTombstone.log)")
    }

    @Test func fixThenRedriveSeveralCodesStoresEachOnceAndRecordsEveryAttempt() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics(partitions: 1)
        let topic = topics.prefix + Self.interaction
        let big = fixtureUUID(1)
        let noType = fixtureUUID(2)
        let badTime = fixtureUUID(3)
        let padding = String(repeating: "x", count: 300)
        try topics.produce([
            // Too large for the 300-byte limit ingest runs with below, fine for the default.
            KafkaOutgoingMessage(
                topic: topic, key: Array("user-1".utf8),
                value: Self.event(
                    big, #""timestamp":"2026-03-01T10:00:00Z","event_type":"tap","note":"\#(padding)""#)),
            KafkaOutgoingMessage(
                topic: topic, key: Array("user-1".utf8),
                value: Self.event(noType, #""timestamp":"2026-03-01T10:00:01Z""#)),
            KafkaOutgoingMessage(
                topic: topic, key: Array("user-1".utf8),
                value: Self.event(badTime, #""timestamp":"yesterday","event_type":"tap""#)),
            KafkaOutgoingMessage(topic: topic, key: Array("user-1".utf8), value: Array("{not json".utf8)),
            // Intent telemetry keeps no payload of a reject.
            KafkaOutgoingMessage(
                topic: topics.prefix + "bte.intent-events.v1", key: Array("s".utf8), value: Array("{not json".utf8)),
        ])
        let first = try Self.ingest(db, topics, maxMessageBytes: 300)
        #expect(first.totalStored == 0)
        var ids: [String: Int64] = [:]
        for row in try db.admin().execute(
            "SELECT error_code, id FROM bte.rejected_events WHERE source_topic = $1", [topic]
        )
        .rows {
            ids[row[0] ?? ""] = Int64(row[1] ?? "")
        }
        #expect(Set(ids.keys) == ["message_too_large", "missing_field", "invalid_timestamp", "invalid_json"])
        let intentReject = Int64(
            try db.admin().execute(
                "SELECT id FROM bte.rejected_events WHERE source_topic = $1", [topics.prefix + "bte.intent-events.v1"]
            ).rows.first?[0] ?? "")
        let all = Array(ids.values) + [intentReject].compactMap { $0 }
        #expect(all.count == 5)

        // list: everything, by code, by topic.
        let list = try Self.bte(["rejects", "list", "--format", "json"], db)
        #expect(list.process.terminationStatus == 0, "\(list.log)")
        let listed = try JSONSerialization.jsonObject(with: Data(list.log.utf8)) as? [[String: Any]] ?? []
        #expect(listed.count == 5)
        #expect(listed.filter { $0["payload_kept"] as? Bool == false }.count == 1)
        let byCode = try Self.bte(["rejects", "list", "--code", "missing_field", "--format", "json"], db)
        #expect((try JSONSerialization.jsonObject(with: Data(byCode.log.utf8)) as? [[String: Any]])?.count == 1)
        let byTopic = try Self.bte(["rejects", "list", "--topic", topic, "--since", "1h", "--format", "json"], db)
        #expect((try JSONSerialization.jsonObject(with: Data(byTopic.log.utf8)) as? [[String: Any]])?.count == 4)

        // show: the payload as text; the intent reject's was not kept.
        let show = try Self.bte(["rejects", "show", String(ids["missing_field"] ?? 0)], db)
        #expect(show.process.terminationStatus == 0, "\(show.log)")
        #expect(show.log.contains("code:        missing_field"), "\(show.log)")
        #expect(
            show.log.contains(
                String(decoding: Self.event(noType, #""timestamp":"2026-03-01T10:00:01Z""#), as: UTF8.self)))
        let hidden = try Self.bte(["rejects", "show", String(intentReject ?? 0)], db)
        #expect(hidden.log.contains("payload:     not kept (personal data or intent telemetry); not redrivable"))
        let none = try Self.bte(["rejects", "show", "999999"], db)
        #expect(none.process.terminationStatus == 1)
        #expect(none.log == "bte: not found: no reject with id 999999\n")
        // A code that is no reject code is a usage error, not "no rejects".
        let nonsense = try Self.bte(["rejects", "list", "--code", "nonsense_code"], db)
        #expect(nonsense.process.terminationStatus == 1)
        #expect(nonsense.log.hasPrefix("bte: error: bte_usage: --code nonsense_code is not a reject code; one of: "))

        // The producer's fix for two of them; the oversized one needs no fix under today's limit.
        let fixedFile = FileManager.default.temporaryDirectory.appendingPathComponent("\(db.name)-fixed.ndjson")
        try """
        {"reject_id": \(ids["missing_field"] ?? 0), "record": {"event_id":"\(noType)","user_id":"user-1",\
        "session_id":"s-1","timestamp":"2026-03-01T10:00:01Z","event_type":"click"}}

        {"reject_id": \(ids["invalid_timestamp"] ?? 0), "record": {"event_id":"\(badTime)","user_id":"user-1",\
        "session_id":"s-1","timestamp":"2026-03-01T10:00:02Z","event_type":"tap"}}
        """.write(to: fixedFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: fixedFile) }
        let idArguments = ["--ids"] + all.map(String.init)
        let dry = try Self.bte(
            ["rejects", "redrive"] + idArguments + ["--fixed", fixedFile.path, "--format", "json"], db)
        #expect(dry.process.terminationStatus == 0, "\(dry.log)")
        let expectedDry: [Int64: String] = [
            ids["message_too_large"] ?? 0: "would_store", ids["missing_field"] ?? 0: "would_store",
            ids["invalid_timestamp"] ?? 0: "would_store", ids["invalid_json"] ?? 0: "still_invalid",
            intentReject ?? 0: "not_redrivable",
        ]
        #expect(try Self.outcomes(dry) == expectedDry)
        #expect(try db.count("SELECT count(*) FROM core.interaction_events") == 0)
        #expect(try db.count("SELECT count(*) FROM bte.redrives") == 0)

        let executed = try Self.bte(
            ["rejects", "redrive"] + idArguments + [
                "--fixed", fixedFile.path, "--execute", "--by", "ops", "--format", "json",
            ],
            db)
        #expect(executed.process.terminationStatus == 0, "\(executed.log)")
        var expected = expectedDry
        for (id, outcome) in expected where outcome == "would_store" { expected[id] = "stored" }
        #expect(try Self.outcomes(executed) == expected)
        let stored = try db.admin().execute(
            "SELECT event_id::text, event_type, source_topic, source_offset FROM core.interaction_events "
                + "ORDER BY event_id"
        ).rows
        // Stored with their own ids, the fixed content, and the original message's coordinates.
        #expect(stored.map { $0[0] ?? "" } == [big, noType, badTime])
        #expect(stored.map { $0[1] ?? "" } == ["tap", "click", "tap"])
        #expect(stored.allSatisfy { $0[2] == topic })
        #expect(stored.map { $0[3] ?? "" } == ["0", "1", "2"])
        #expect(try db.count("SELECT count(*) FROM bte.redrives WHERE requested_by = 'ops'") == 5)
        #expect(try db.count("SELECT count(*) FROM bte.redrives WHERE record_source = 'fixed'") == 2)

        // Again: nothing new stored, every attempt recorded.
        let again = try Self.bte(
            ["rejects", "redrive"] + idArguments + ["--fixed", fixedFile.path, "--execute", "--format", "json"], db)
        for (id, outcome) in expected where outcome == "stored" { expected[id] = "already_stored" }
        #expect(try Self.outcomes(again) == expected)
        #expect(try db.count("SELECT count(*) FROM core.interaction_events") == 3)
        #expect(try db.count("SELECT count(*) FROM bte.redrives") == 10)
        // Immutable like the logs.
        #expect(throws: (any Error).self) { try db.admin().execute("DELETE FROM bte.redrives") }
        let relisted = try Self.bte(["rejects", "list", "--code", "missing_field"], db)
        #expect(relisted.log.contains("redriven: already_stored"), "\(relisted.log)")
    }

    /// The bulk fix: export, edit each record (as jq would), redrive the file.
    @Test func exportEditAndRedriveTheFile() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics(partitions: 1)
        let topic = topics.prefix + Self.interaction
        let noType = fixtureUUID(11)
        let alsoNoType = fixtureUUID(12)
        try topics.produce([
            KafkaOutgoingMessage(
                topic: topic, key: Array("user-1".utf8),
                value: Self.event(noType, #""timestamp":"2026-03-01T10:00:01Z""#)),
            KafkaOutgoingMessage(
                topic: topic, key: Array("user-1".utf8),
                value: Self.event(alsoNoType, #""timestamp":"2026-03-01T10:00:02Z""#)),
            KafkaOutgoingMessage(topic: topic, key: Array("user-1".utf8), value: Array("{not json".utf8)),
            // Intent telemetry keeps no payload of a reject: left out of the export.
            KafkaOutgoingMessage(
                topic: topics.prefix + "bte.intent-events.v1", key: Array("s".utf8), value: Array("{not json".utf8)),
        ])
        _ = try Self.ingest(db, topics, maxMessageBytes: 262_144)
        var ids: [String: [Int64]] = [:]
        for row in try db.admin().execute(
            "SELECT error_code, id FROM bte.rejected_events WHERE source_topic = $1 ORDER BY id", [topic]
        ).rows {
            ids[row[0] ?? "", default: []].append(Int64(row[1] ?? "") ?? 0)
        }
        let missing = ids["missing_field"] ?? []
        let notJSON = ids["invalid_json"] ?? []
        #expect(missing.count == 2 && notJSON.count == 1)
        #expect(try db.count("SELECT count(*) FROM bte.rejected_events") == 4)

        let export = try Self.bte(["rejects", "export"], db)
        #expect(export.process.terminationStatus == 0, "\(export.log)")
        let lines = export.log.split(separator: "\n").filter { $0.hasPrefix("{") }.map(String.init)
        // The two events with their records (canonical: keys sorted), "{not json" as base64.
        #expect(
            lines == [
                #"{"reject_id":\#(missing[0]),"record":{"event_id":"\#(noType)","session_id":"s-1","#
                    + #""timestamp":"2026-03-01T10:00:01Z","user_id":"user-1"}}"#,
                #"{"reject_id":\#(missing[1]),"record":{"event_id":"\#(alsoNoType)","session_id":"s-1","#
                    + #""timestamp":"2026-03-01T10:00:02Z","user_id":"user-1"}}"#,
                #"{"reject_id":\#(notJSON[0]),"payload_base64":"e25vdCBqc29u"}"#,
            ])
        #expect(export.log.contains("1 rejects left out: their payload was not kept"), "\(export.log)")
        let byCode = try Self.bte(["rejects", "export", "--code", "missing_field", "--ids", String(missing[1])], db)
        #expect(byCode.log.split(separator: "\n").filter { $0.hasPrefix("{") }.count == 1, "\(byCode.log)")

        // The fix, as `jq -c 'select(.record) | .record.event_type = "click" | .reject_id |= tostring'`
        // would write it: every record gets its event type, the ids become strings.
        var edited: [String] = []
        for line in lines where line.contains("\"record\"") {
            var object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            var record = try #require(object["record"] as? [String: Any])
            record["event_type"] = "click"
            object["record"] = record
            object["reject_id"] = String(try #require(object["reject_id"] as? Int))
            edited.append(String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self))
        }
        let fixedFile = FileManager.default.temporaryDirectory.appendingPathComponent("\(db.name)-export.ndjson")
        try (edited.joined(separator: "\n") + "\n").write(to: fixedFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: fixedFile) }
        let redrive = try Self.bte(
            ["rejects", "redrive", "--fixed", fixedFile.path, "--execute", "--by", "ops", "--format", "json"], db)
        #expect(redrive.process.terminationStatus == 0, "\(redrive.log)")
        #expect(try Self.outcomes(redrive) == [missing[0]: "stored", missing[1]: "stored"])
        let stored = try db.admin().execute(
            "SELECT event_id::text, event_type FROM core.interaction_events ORDER BY event_id"
        ).rows
        #expect(stored.map { $0[0] ?? "" } == [noType, alsoNoType].sorted())
        #expect(stored.map { $0[1] ?? "" } == ["click", "click"])
        #expect(try db.count("SELECT count(*) FROM bte.redrives WHERE record_source = 'fixed'") == 2)
    }

    @Test func aRedriveKilledMidwayLosesAndDoublesNothing() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics(partitions: 1)
        let topic = topics.prefix + Self.interaction
        let count = 3_000
        try topics.produce(
            (1...count).map { n in
                KafkaOutgoingMessage(
                    topic: topic, key: Array("user-\(n % 7)".utf8),
                    value: Self.event(fixtureUUID(n), #""timestamp":"2026-03-01T10:00:00Z","event_type":"tap""#))
            })
        // A limit every event exceeds: all rejected as message_too_large.
        _ = try Self.ingest(db, topics, maxMessageBytes: 100)
        #expect(
            try db.count("SELECT count(*) FROM bte.rejected_events WHERE error_code = 'message_too_large'") == count)

        let redrive = try BTEProcess(
            ["rejects", "redrive", "--code", "message_too_large", "--execute"],
            environment: ["BTE_DATABASE_URL": db.ingestURL])
        #expect(try eventually(timeout: 60) { try db.count("SELECT count(*) FROM bte.redrives") > 0 })
        kill(redrive.process.processIdentifier, SIGKILL)
        _ = redrive.wait(timeout: 30)
        let before = try db.count("SELECT count(*) FROM core.interaction_events")
        let attempts = try db.count("SELECT count(*) FROM bte.redrives")
        // Killed midway: some chunks committed, not all; each committed attempt has its event.
        #expect(before > 0 && before < count, "stored \(before) before the kill")
        #expect(attempts == before)

        let rerun = try Self.bte(["rejects", "redrive", "--code", "message_too_large", "--execute"], db)
        #expect(rerun.process.terminationStatus == 0, "\(rerun.log)")
        #expect(
            rerun.log.contains("\(count) rejects: \(before) already_stored, \(count - before) stored"), "\(rerun.log)")
        #expect(try db.count("SELECT count(*) FROM core.interaction_events") == count)
        #expect(try db.count("SELECT count(DISTINCT event_id) FROM core.interaction_events") == count)
        #expect(try db.count("SELECT count(*) FROM bte.redrives WHERE outcome = 'stored'") == count)
    }
}

import BTEDomain
import BTEFixtures
import BTEIngest
import BTETestSupport
import Foundation
import Kafka
import MetricsTestKit
import Postgres
import Testing

@Suite(.serialized) struct IngestTests {
    /// Thousands of events with re-deliveries and two of every bad input: each valid event is
    /// stored once, each bad one rejected with its code in the table and the dead-letter topic.
    @Test func mixedStreamIsStoredExactlyOnce() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        var stream = demoStream(topics, events: 4_000, seed: 11, badRounds: 2)
        // An otherwise valid event with a field this version doesn't know.
        let extraID = "7d1a4c2e-0000-4000-8000-00000000e57a"
        stream.messages.append(
            KafkaOutgoingMessage(
                topic: topics.prefix + "bte.interaction-events.v1", key: Array("user-x".utf8),
                value: Array(
                    ("{\"event_id\":\"\(extraID)\",\"timestamp\":\"2026-10-02T08:00:00Z\",\"event_type\":\"tap\","
                        + "\"user_id\":\"user-x\",\"session_id\":\"s\",\"ab_test\":{\"arm\":\"B\"}}")
                        .utf8)))
        try topics.produce(stream.messages)

        let metrics = TestMetrics()
        let summary = try ingestUntilIdle(db, topics, group: TestEnvironment.uniqueName("ingest-"), metrics: metrics)

        // Two rounds of bad input: two messages per code (all 21 codes).
        var expectedRejects: [String: Int] = [:]
        for code in RejectionCode.all { expectedRejects[code.rawValue] = 2 }
        #expect(expectedCodes(stream) == expectedRejects)
        #expect(try rejectedCounts(db) == expectedRejects)

        var expectedStored = stream.expectedStored
        expectedStored[.interactionEvents, default: 0] += 1
        #expect(try storedCounts(db) == expectedStored)
        #expect(stream.totalStored == 4_000)
        #expect(summary.totalStored == 4_001)
        // Every 50th valid message was sent twice: 4000 / 50 = 80 re-deliveries.
        #expect(summary.totalDuplicates == 80)
        #expect(summary.consumed == stream.total)

        // The metrics say the same.
        #expect(metrics.counterTotal(label: "bte_ingest_messages_consumed_total") == Int64(stream.total))
        for (table, count) in expectedStored {
            #expect(
                metrics.counterTotal(label: "bte_ingest_events_stored_total", dimensions: [("log", table.rawValue)])
                    == Int64(count))
        }
        for (code, count) in expectedRejects {
            #expect(
                metrics.counterTotal(label: "bte_ingest_rejected_total", dimensions: [("code", code)]) == Int64(count),
                "\(code)")
        }
        #expect(metrics.counterTotal(label: "bte_ingest_duplicates_total") == 80)
        // Per topic too, for the reject ratio: every message under its topic, every reject.
        #expect(metrics.counterTotal(label: "bte_ingest_topic_messages_total") == Int64(stream.total))
        #expect(
            metrics.counterTotal(label: "bte_ingest_topic_rejected_total")
                == Int64(expectedRejects.values.reduce(0, +)))
        #expect(metrics.counterTotal(label: "bte_ingest_retries_total") == 0)

        // Unknown fields are the person's: sealed with the rest of their personal content, they
        // come back whole in an export, and the column keeps none of them.
        let extra = try db.admin().execute(
            "SELECT extra::text, sealed IS NOT NULL FROM core.interaction_events WHERE event_id = $1", [extraID]
        ).rows
        #expect(extra == [[nil, "t"]])

        // The dead-letter topic holds the same rejects, with their coordinates and raw bytes.
        let letters = try topics.readAll(topics.prefix + "bte.dead-letter.v1")
        var letterCodes: [String: Int] = [:]
        var letterCoordinates: Set<String> = []
        let produced = Dictionary(
            grouping: try InputKind.allCases.flatMap { try topics.readAll(topics.prefix + $0.rawValue) }
        ) { "\($0.topic)/\($0.partition)/\($0.offset)" }
        for letter in letters {
            let object = try #require(
                try JSONSerialization.jsonObject(with: Data(letter.value ?? [])) as? [String: Any])
            let code = try #require(object["error_code"] as? String)
            letterCodes[code, default: 0] += 1
            let coordinate =
                "\(object["source_topic"] as? String ?? "")/"
                + "\(object["partition"] as? Int ?? -1)/\(object["offset"] as? Int ?? -1)"
            letterCoordinates.insert(coordinate)
            let original = try #require(produced[coordinate]?.first, "\(coordinate)")
            let payload = (object["payload_base64"] as? String).flatMap { Data(base64Encoded: $0) }.map { [UInt8]($0) }
            // Rejects of intent telemetry (personal data above all) keep no payload.
            let withheld = code == "pii_violation" || original.topic.hasSuffix("bte.intent-events.v1")
            #expect(payload == (withheld ? nil : original.value), "\(code) payload")
            #expect(letter.key == original.key)
        }
        #expect(letterCodes == expectedRejects)
        let rejectedRows = try db.admin().execute(
            "SELECT source_topic || '/' || source_partition || '/' || source_offset FROM bte.rejected_events"
        ).rows
        #expect(Set(rejectedRows.map { $0[0] ?? "" }) == letterCoordinates)
        #expect(
            try db.count(
                "SELECT count(*) FROM bte.rejected_events WHERE error_code = 'pii_violation' AND payload IS NULL")
                == expectedRejects["pii_violation"])
        #expect(
            try db.count(
                "SELECT count(*) FROM bte.rejected_events "
                    + "WHERE source_topic LIKE '%bte.intent-events.v1' AND payload IS NOT NULL"
            ) == 0)
        #expect(
            try db.count(
                "SELECT count(*) FROM bte.rejected_events "
                    + "WHERE payload IS NOT NULL AND position(convert_to('jane@example.com', 'UTF8') in payload) > 0"
            ) == 0)

        // Every stored row points at the message it came from.
        let rows = try db.admin().execute(
            "SELECT event_id::text, source_topic || '/' || source_partition || '/' || source_offset "
                + "FROM core.interaction_events"
        ).rows
        for row in rows {
            let message = try #require(produced[row[1] ?? ""]?.first)
            #expect(String(decoding: message.value ?? [], as: UTF8.self).contains(row[0] ?? "?"))
        }

        // Stored offsets are the high watermarks: sum over partitions = messages per topic.
        for kind in InputKind.allCases {
            let topic = topics.prefix + kind.rawValue
            let next = try db.count(
                "SELECT coalesce(sum(next_offset), 0) FROM bte.ingest_offsets WHERE topic = '\(topic)'")
            #expect(next == stream.messages.filter { $0.topic == topic }.count, "\(kind)")
        }

        // A second run of the same group finds nothing new and changes nothing.
        let before = try contentDigest(db)
        let again = try ingestUntilIdle(
            db, topics,
            group: try db.admin().execute("SELECT DISTINCT consumer_group FROM bte.ingest_offsets").rows[0][0] ?? "")
        #expect(again.consumed == 0)
        #expect(try contentDigest(db) == before)
    }

    /// A fresh group re-reading everything stores nothing twice: re-delivered ids are counted
    /// as duplicates, never overwritten.
    @Test func replayFromScratchOnlyCountsDuplicates() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let stream = demoStream(topics, events: 600, seed: 5, badRounds: 0)
        try topics.produce(stream.messages)
        _ = try ingestUntilIdle(db, topics, group: TestEnvironment.uniqueName("first-"))
        let before = try contentDigest(db)
        let replay = try ingestUntilIdle(db, topics, group: TestEnvironment.uniqueName("second-"))
        #expect(replay.totalStored == 0)
        // 600 distinct + 12 re-sent (every 50th): all 612 are duplicates the second time.
        #expect(replay.totalDuplicates == 612)
        #expect(try contentDigest(db) == before)
    }
}

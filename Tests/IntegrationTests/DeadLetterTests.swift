import BTEDomain
import BTEIngest
import BTEStore
import BTETestSupport
import Crypto
import Foundation
import Kafka
import Testing

/// Dead letters always fit the producer's message size: the payload (and a key or message that
/// would crowd it out) is cut on the topic, said so, and kept whole in `bte.rejected_events`.
@Suite(.serialized) struct DeadLetterTests {
    /// librdkafka's default `message.max.bytes` less the 16 KiB framing margin.
    static let defaultBound = 1_000_000 - 16_384

    static let fieldOrder = [
        "source_topic", "partition", "offset", "key", "key_base64", "payload_base64", "error_code", "error_message",
        "rejected_at", "payload_truncated", "payload_sha256", "payload_bytes", "key_truncated",
    ]

    static func sha256Hex(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: Data(bytes)).map { String(format: "%02x", $0) }.joined()
    }

    /// The top-level field names of a dead letter, in the order they are written.
    static func fieldNames(_ body: [UInt8]) -> [String] {
        let text = String(decoding: body, as: UTF8.self)
        let pattern = try? NSRegularExpression(pattern: #"[{,]"([a-z_0-9]+)":"#)
        return pattern?.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap {
            Range($0.range(at: 1), in: text).map { String(text[$0]) }
        } ?? []
    }

    static func object(_ body: [UInt8]?) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(body ?? [])) as? [String: Any])
    }

    static func interaction(_ n: Int, topic: String) -> KafkaOutgoingMessage {
        KafkaOutgoingMessage(
            topic: topic, key: Array("user-big".utf8),
            value: Array(
                (#"{"event_id":"\#(fixtureUUID(n))","timestamp":"2026-10-02T08:00:0\#(n)Z","event_type":"tap","#
                    + #""user_id":"user-big","session_id":"s"}"#)
                    .utf8))
    }

    @Test func defaultBoundLeavesAMarginUnderTheProducerLimit() {
        var configuration = IngestConfiguration(brokers: "b", databaseURL: "d")
        #expect(configuration.deadLetterMaxRecordBytes == Self.defaultBound)
        configuration.kafkaProperties["message.max.bytes"] = "2000000"
        #expect(configuration.deadLetterMaxRecordBytes == 2_000_000 - 16_384)
    }

    /// A 950,000-byte message: over ingest's 262,144-byte limit, under the producer's and the
    /// broker's. Its dead letter would be 4/3 of it in base64, over the producer's limit.
    @Test func oversizedRejectIsDeadLetteredTruncated() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics(partitions: 1)
        let topic = topics.prefix + "bte.interaction-events.v1"
        let big = (0..<950_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
        let bigHash = Self.sha256Hex(big)
        try topics.produce([
            Self.interaction(1, topic: topic), Self.interaction(2, topic: topic),
            KafkaOutgoingMessage(topic: topic, key: Array("user-big".utf8), value: big),
            Self.interaction(3, topic: topic), Self.interaction(4, topic: topic),
        ])

        let summary = try ingestUntilIdle(db, topics, group: TestEnvironment.uniqueName("big-"))
        #expect(summary.consumed == 5)
        #expect(summary.totalStored == 4)
        #expect(try db.count("SELECT count(*) FROM core.interaction_events") == 4)
        let rows = try db.admin().execute(
            "SELECT error_code, source_offset, length(payload), encode(sha256(payload), 'hex') FROM bte.rejected_events"
        ).rows
        #expect(rows == [["message_too_large", "2", "950000", bigHash]])
        #expect(try db.count("SELECT next_offset FROM bte.ingest_offsets WHERE topic = '\(topic)'") == 5)

        let letters = try topics.readAll(topics.prefix + "bte.dead-letter.v1", partitions: 1)
        try #require(letters.count == 1)
        let letter = letters[0]
        let body = try #require(letter.value)
        let fields = try Self.object(body)
        #expect(Self.fieldNames(body) == Self.fieldOrder)
        #expect(fields["error_code"] as? String == "message_too_large")
        #expect(fields["offset"] as? Int == 2)
        #expect(fields["key"] as? String == "user-big")
        #expect(fields["payload_truncated"] as? Bool == true)
        #expect(fields["payload_bytes"] as? Int == 950_000)
        #expect(fields["payload_sha256"] as? String == bigHash)
        #expect(fields["key_truncated"] as? Bool == false)
        #expect(letter.key == Array("user-big".utf8))
        // The record uses the room it has (base64 comes in 4-character steps) and no more.
        let size = body.count + (letter.key?.count ?? 0)
        #expect(size <= Self.defaultBound)
        #expect(size > Self.defaultBound - 4)
        let prefix = try #require(
            (fields["payload_base64"] as? String).flatMap { Data(base64Encoded: $0) }.map { [UInt8]($0) })
        #expect(prefix.count > 700_000)
        #expect(prefix == Array(big.prefix(prefix.count)))
    }

    @Test func smallRejectCarriesItsWholePayload() throws {
        let payload = Array(#"{"event_id": oops"#.utf8)
        let reject = RejectedMessage(
            source: SourcePosition(topic: "bte.interaction-events.v1", partition: 2, offset: 1841),
            key: Array("user-7".utf8),
            value: payload, rejection: Rejection(.invalidJSON, "unexpected character at byte 13"))
        let message = DeadLetter.message(
            for: reject, topic: "bte.dead-letter.v1", rejectedAt: "2026-11-25T14:02:11.412000Z",
            maxRecordBytes: Self.defaultBound)
        #expect(message.topic == "bte.dead-letter.v1")
        #expect(message.key == Array("user-7".utf8))
        // "user-7" is dXNlci03; the payload's base64 and SHA-256 are computed independently.
        let expected =
            #"{"source_topic":"bte.interaction-events.v1","partition":2,"offset":1841,"key":"user-7","#
            + #""key_base64":"dXNlci03","#
            + #""payload_base64":"\#(Data(payload).base64EncodedString())","error_code":"invalid_json","#
            + #""error_message":"unexpected character at byte 13","rejected_at":"2026-11-25T14:02:11.412000Z","#
            + #""payload_truncated":false,"payload_sha256":"\#(Self.sha256Hex(payload))","payload_bytes":17,"#
            + #""key_truncated":false}"#
        #expect(String(decoding: message.value ?? [], as: UTF8.self) == expected)
    }

    @Test func rejectWithoutPayloadSaysSo() throws {
        let reject = RejectedMessage(
            source: SourcePosition(topic: "bte.intent-events.v1", partition: 0, offset: 3), key: nil,
            value: Array(#"{"utterance":"call me"}"#.utf8),
            rejection: Rejection(.piiViolation, "utterance would store raw personal data"))
        let fields = try Self.object(
            DeadLetter.message(
                for: reject, topic: "dl", rejectedAt: "2026-11-25T14:02:11Z", maxRecordBytes: Self.defaultBound
            ).value)
        #expect(fields["payload_base64"] is NSNull)
        #expect(fields["payload_truncated"] as? Bool == false)
        #expect(fields["payload_sha256"] is NSNull)
        #expect(fields["payload_bytes"] is NSNull)
        #expect(fields["key"] is NSNull)
    }

    /// A key is carried three times (record key, text, base64): a huge one is cut to 4 KiB so
    /// the payload keeps room; an over-long error message is cut too.
    @Test func hugeKeyAndMessageAreBounded() throws {
        let key = [UInt8](repeating: UInt8(ascii: "k"), count: 600_000)
        let payload = [UInt8](repeating: UInt8(ascii: "p"), count: 300_000)
        let reject = RejectedMessage(
            source: SourcePosition(topic: "bte.business-events.v1", partition: 1, offset: 9), key: key, value: payload,
            rejection: Rejection(
                .unknownRecordType,
                "record_type \"" + String(repeating: "r", count: 100_000) + "\" is not one of: business_event"))
        let bound = 100_000
        let message = DeadLetter.message(
            for: reject, topic: "dl", rejectedAt: "2026-11-25T14:02:11Z", maxRecordBytes: bound)
        let body = try #require(message.value)
        let fields = try Self.object(body)
        #expect(message.key == Array(key.prefix(4_096)))
        #expect(fields["key"] as? String == String(repeating: "k", count: 4_096))
        #expect(fields["key_truncated"] as? Bool == true)
        #expect(fields["payload_truncated"] as? Bool == true)
        #expect(fields["payload_bytes"] as? Int == 300_000)
        #expect(fields["payload_sha256"] as? String == Self.sha256Hex(payload))
        let errorMessage = try #require(fields["error_message"] as? String)
        #expect(errorMessage.utf8.count <= 2_048)
        #expect(errorMessage.hasPrefix("record_type \"rrr"))
        #expect(body.count + 4_096 <= bound)
        #expect(body.count + 4_096 > bound - 4)
    }
}

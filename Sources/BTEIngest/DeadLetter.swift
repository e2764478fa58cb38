import BTEDomain
import BTEStore
import Crypto
import Foundation
import Kafka

/// The dead-letter record of a rejected message: its coordinates, key and payload, and why it
/// was refused. A record the producer refuses would stop ingest for good, so every record fits
/// `maxRecordBytes` (key plus value): a payload that doesn't is cut, and the record says so with
/// the full payload's size and SHA-256. `bte.rejected_events` always keeps the full bytes.
public enum DeadLetter {
    /// Longest key carried. The key appears three times (record key, text, base64); a longer one
    /// is a producer bug, and must not crowd out the payload.
    public static let maxKeyBytes = 4_096
    /// Longest error message carried; validation messages can quote input.
    public static let maxErrorMessageBytes = 2_048

    public static func message(for reject: RejectedMessage, topic: String, rejectedAt: String, maxRecordBytes: Int)
        -> KafkaOutgoingMessage
    {
        let key = reject.key.map { Array($0.prefix(maxKeyBytes)) }
        let keyTruncated = (reject.key?.count ?? 0) > maxKeyBytes
        let quoted = JSONValue.quoted
        let keyText = key.flatMap { String(validating: $0, as: UTF8.self) }
        let payloadHash = reject.value.map { hexString(SHA256.hash(data: $0)) }

        func body(payloadBase64: String?, truncated: Bool) -> [UInt8] {
            var fields: [(String, String)] = []
            fields.append(("source_topic", quoted(reject.source.topic)))
            fields.append(("partition", String(reject.source.partition)))
            fields.append(("offset", String(reject.source.offset)))
            fields.append(("key", keyText.map(quoted) ?? "null"))
            fields.append(("key_base64", key.map { quoted(Data($0).base64EncodedString()) } ?? "null"))
            fields.append(("payload_base64", payloadBase64.map(quoted) ?? "null"))
            fields.append(("error_code", quoted(reject.rejection.code.rawValue)))
            fields.append(("error_message", quoted(clipped(reject.rejection.message))))
            fields.append(("rejected_at", quoted(rejectedAt)))
            fields.append(("payload_truncated", truncated ? "true" : "false"))
            fields.append(("payload_sha256", payloadHash.map(quoted) ?? "null"))
            fields.append(("payload_bytes", reject.value.map { String($0.count) } ?? "null"))
            fields.append(("key_truncated", keyTruncated ? "true" : "false"))
            return JSONValue.objectBytes(fields)
        }

        let room = maxRecordBytes - (key?.count ?? 0)
        var value = body(payloadBase64: reject.value.map { Data($0).base64EncodedString() }, truncated: false)
        if let payload = reject.value, value.count > room {
            // Base64 is plain ASCII and needs no JSON escaping: each 3 bytes kept cost 4 characters.
            let fixed = body(payloadBase64: "", truncated: true).count
            let kept = max(room - fixed, 0) / 4 * 3
            value = body(payloadBase64: Data(payload.prefix(kept)).base64EncodedString(), truncated: true)
        }
        return KafkaOutgoingMessage(topic: topic, key: key, value: value)
    }

    /// At most `maxErrorMessageBytes` of UTF-8, cut between characters.
    private static func clipped(_ message: String) -> String {
        guard message.utf8.count > maxErrorMessageBytes else { return message }
        var out = ""
        var bytes = 0
        let ellipsis = "…"
        for character in message {
            let size = character.utf8.count
            if bytes + size + ellipsis.utf8.count > maxErrorMessageBytes { break }
            out.append(character)
            bytes += size
        }
        return out + ellipsis
    }
}

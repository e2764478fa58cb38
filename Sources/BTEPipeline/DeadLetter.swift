import BTEDomain
import BTEStore
import Foundation
import Kafka

/// The dead-letter record of a rejected message (DESIGN.md §3).
enum DeadLetter {
    static func message(for reject: RejectedMessage, topic: String, rejectedAt: String) -> KafkaOutgoingMessage {
        var fields: [(String, String)] = []
        let quoted = JSONValue.quoted
        let keyText = reject.key.flatMap { String(validating: $0, as: UTF8.self) }
        fields.append(("source_topic", quoted(reject.source.topic)))
        fields.append(("partition", String(reject.source.partition)))
        fields.append(("offset", String(reject.source.offset)))
        fields.append(("key", keyText.map(quoted) ?? "null"))
        fields.append(("key_base64", reject.key.map { quoted(Data($0).base64EncodedString()) } ?? "null"))
        fields.append(("payload_base64", reject.value.map { quoted(Data($0).base64EncodedString()) } ?? "null"))
        fields.append(("error_code", quoted(reject.rejection.code.rawValue)))
        fields.append(("error_message", quoted(reject.rejection.message)))
        fields.append(("rejected_at", quoted(rejectedAt)))
        let body = "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
        return KafkaOutgoingMessage(topic: topic, key: reject.key, value: Array(body.utf8))
    }
}

import BTECompute
import BTEDomain
import Kafka
import Logging
import Metrics

/// Reports signals that could not be computed for one workspace, without holding up the
/// others: a log line, a counter and a dead-letter record (acknowledged with the batch's outputs).
struct ComputationFailures {
    let logger: Logger
    let metrics: any MetricsFactory
    let deadLetterTopic: String
    /// Where the computation came from: an input topic, or `bte.sweep`.
    let source: String

    func report(workspaceID: String, failed: [SignalType], asOf: Timestamp) -> [KafkaOutgoingMessage] {
        failed.map { type in
            logger.warning("signal not computable", metadata: ["workspace_id": "\(workspaceID)", "signal_type": "\(type.rawValue)", "as_of": "\(asOf)"])
            Counter(label: "bte_computation_failures_total", dimensions: [("signal_type", type.rawValue)], factory: metrics).increment()
            // The dead-letter shape of DESIGN.md §3, for an entity instead of an input message;
            // `rejected_at` is the as_of so a replay writes the same bytes.
            let fields: [(String, String)] = [
                ("source_topic", quotedText(source)), ("partition", "-1"), ("offset", "-1"),
                ("key", quotedText(workspaceID)), ("payload_base64", "null"),
                ("error_code", quotedText("computation_failed")),
                ("error_message", quotedText("\(type.rawValue) is not a finite number (an overflowing sum of metadata values)")),
                ("rejected_at", quotedText(asOf.rfc3339)),
                ("entity_type", quotedText("workspace")), ("entity_id", quotedText(workspaceID)), ("signal_type", quotedText(type.rawValue)),
            ]
            let body = "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
            return KafkaOutgoingMessage(topic: deadLetterTopic, key: Array(workspaceID.utf8), value: Array(body.utf8))
        }
    }
}

private func quotedText(_ text: String) -> String {
    var out: [UInt8] = []
    JSONValue.writeString(text, into: &out)
    return String(decoding: out, as: UTF8.self)
}

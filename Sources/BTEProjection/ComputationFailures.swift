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
            logger.warning(
                "signal not computable",
                metadata: ["workspace_id": "\(workspaceID)", "signal_type": "\(type.rawValue)", "as_of": "\(asOf)"])
            Counter(
                label: "bte_computation_failures_total", dimensions: [("signal_type", type.rawValue)], factory: metrics
            ).increment()
            // The dead-letter shape (docs/operations.md), for an entity instead of an input message;
            // `rejected_at` is the as_of so a replay writes the same bytes.
            let fields: [(String, String)] = [
                ("source_topic", JSONValue.quoted(source)), ("partition", "-1"), ("offset", "-1"),
                ("key", JSONValue.quoted(workspaceID)), ("payload_base64", "null"),
                ("error_code", JSONValue.quoted("computation_failed")),
                (
                    "error_message",
                    JSONValue.quoted("\(type.rawValue) is not a finite number (an overflowing sum of metadata values)")
                ),
                ("rejected_at", JSONValue.quoted(asOf.rfc3339)),
                ("entity_type", JSONValue.quoted("workspace")), ("entity_id", JSONValue.quoted(workspaceID)),
                ("signal_type", JSONValue.quoted(type.rawValue)),
            ]
            return KafkaOutgoingMessage(
                topic: deadLetterTopic, key: Array(workspaceID.utf8), value: JSONValue.objectBytes(fields))
        }
    }
}

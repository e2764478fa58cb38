import BTECompute
import BTEDomain
import BTEStore
import Kafka
import Logging
import Metrics

/// What one projection computes: signals, behavioral vectors, insights, and dead letters for
/// signals that could not be computed.
public struct ProjectionOutputs: Sendable {
    public var thresholdsVersion = 0
    public var signals: [SignalRecord] = []
    public var insights: [InsightRecord] = []
    /// Behavioral vectors as published (the vector JSON is built once, here).
    public var vectors: [KafkaOutgoingMessage] = []
    public var failures: [KafkaOutgoingMessage] = []

    /// Outputs per output topic, by the topic's unprefixed name (for metrics).
    public func countsByTopic() -> [String: Int] {
        [
            OutputTopic.signals.rawValue: signals.count, OutputTopic.behavioralVectors.rawValue: vectors.count,
            OutputTopic.insights.rawValue: insights.count, OutputTopic.deadLetter.rawValue: failures.count,
        ].filter { $0.value > 0 }
    }

    /// Every output as a message to its topic: signals, vectors, insights, then dead letters.
    public func messages(prefix: String) -> [KafkaOutgoingMessage] {
        let signalsTopic = OutputTopic.signals.name(prefix: prefix)
        let insightsTopic = OutputTopic.insights.name(prefix: prefix)
        return signals.map {
            KafkaOutgoingMessage(topic: signalsTopic, key: Array($0.workspaceID.utf8), value: $0.json())
        }
            + vectors
            + insights.map {
                KafkaOutgoingMessage(topic: insightsTopic, key: Array($0.workspaceID.utf8), value: $0.json())
            }
            + failures
    }
}

/// The sweep's path from stored history to outputs (every active entity, as of one instant).
/// It finishes the records from the same aggregates as the projector's incremental state, so
/// the same inputs give the same bytes whichever runs. Call it inside the reader's snapshot, so
/// every query sees the same logs.
struct Projection {
    let topicPrefix: String
    let logger: Logger
    let metrics: any MetricsFactory
    /// Where the computation came from, for dead letters: an input topic, or `bte.sweep`.
    let source: String

    func compute(reader: HistoryReader, workspaces: [String: Timestamp], users: [UserKey: Timestamp]) throws
        -> ProjectionOutputs
    {
        let thresholds = try reader.thresholds()
        var outputs = ProjectionOutputs(thresholdsVersion: thresholds.version)
        let computer = SignalComputer(thresholds: thresholds)
        let reporter = ComputationFailures(
            logger: logger, metrics: metrics, deadLetterTopic: OutputTopic.deadLetter.name(prefix: topicPrefix),
            source: source)
        for history in try reader.workspaceHistories(workspaces) {
            let asOf = workspaces[history.workspaceID] ?? Timestamp(microseconds: 0)
            let evaluated = computer.evaluateRecords(history, asOf: asOf)
            outputs.signals += evaluated.records
            outputs.failures += reporter.report(workspaceID: history.workspaceID, failed: evaluated.failed, asOf: asOf)
        }
        outputs.insights = try reader.insightHistories(workspaces).flatMap { history in
            InsightComputer().records(
                history, asOf: workspaces[history.workspaceID] ?? Timestamp(microseconds: 0),
                thresholdsVersion: thresholds.version)
        }
        let vectorsTopic = OutputTopic.behavioralVectors.name(prefix: topicPrefix)
        let interactions = Dictionary(grouping: try reader.interactions(users), by: \.user)
        outputs.vectors = users.keys.sorted().compactMap { user in
            guard let asOf = users[user],
                let vector = VectorComputer().compute(user: user, interactions: interactions[user] ?? [], asOf: asOf)
            else { return nil }
            return KafkaOutgoingMessage(
                topic: vectorsTopic, key: Array(user.topicKey.utf8),
                value: vector.json(thresholdsVersion: thresholds.version, computedFrom: vector.totalInteractions))
        }
        return outputs
    }
}

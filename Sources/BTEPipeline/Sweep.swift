import BTECompute
import BTEDomain
import BTEStore
import Kafka
import Logging
import Metrics

/// `bte sweep --as-of T`: recomputes the time-dependent signals of every workspace active in
/// the window and publishes them. Read-only towards PostgreSQL.
public struct Sweep: Sendable {
    public struct Result: Sendable {
        public var workspaces = 0
        public var signals = 0
        public var thresholdsVersion = 0
        public var records: [SignalRecord] = []
        public var insights: [InsightRecord] = []
        /// Dead letters for signals that could not be computed.
        public var failures: [KafkaOutgoingMessage] = []
        /// Behavioral vectors of the users active in the window, as published.
        public var vectors: [KafkaOutgoingMessage] = []
    }

    public var brokers: String
    public var readerURL: String
    public var topicPrefix = ""
    public var logger: Logger
    public var metrics: any MetricsFactory = MetricsSystem.factory

    public init(brokers: String, readerURL: String, logger: Logger) {
        self.brokers = brokers
        self.readerURL = readerURL
        self.logger = logger
    }

    public var signalsTopic: String { topicPrefix + "bte.signals.v1" }
    public var insightsTopic: String { topicPrefix + "bte.insights.v1" }
    public var vectorsTopic: String { topicPrefix + "bte.behavioral-vectors.v1" }

    /// Computes without publishing, in one read-only snapshot: signals and insights of every
    /// workspace active in the window, in a deterministic order.
    public func compute(asOf: Timestamp) throws -> Result {
        let reader = try HistoryReader(url: readerURL)
        return try reader.snapshot {
            let thresholds = try ThresholdStore(connection: reader.connection).thresholds()
            let histories = try reader.workspaceHistories(asOf: asOf)
            let computer = SignalComputer(thresholds: thresholds)
            let reporter = ComputationFailures(logger: logger, metrics: metrics, deadLetterTopic: topicPrefix + "bte.dead-letter.v1", source: "bte.sweep")
            var records: [SignalRecord] = []
            var failures: [KafkaOutgoingMessage] = []
            for history in histories {
                let evaluated = computer.evaluateRecords(history, asOf: asOf)
                records += evaluated.records
                failures += reporter.report(workspaceID: history.workspaceID, failed: evaluated.failed, asOf: asOf)
            }
            let insights = try reader.insightHistories(histories.map(\.workspaceID), asOf: asOf).flatMap {
                InsightComputer().records($0, asOf: asOf, thresholdsVersion: thresholds.version)
            }
            let users = try reader.activeUsers(asOf: asOf)
            let interactions = Dictionary(grouping: try reader.interactions(Dictionary(uniqueKeysWithValues: users.map { ($0, asOf) })), by: \.userID)
            let vectors = users.compactMap { user -> KafkaOutgoingMessage? in
                let history = interactions[user] ?? []
                guard let vector = VectorComputer().compute(userID: user, interactions: history, asOf: asOf) else { return nil }
                return KafkaOutgoingMessage(topic: vectorsTopic, key: Array(user.utf8),
                                            value: vector.json(thresholdsVersion: thresholds.version, computedFrom: vector.totalInteractions))
            }
            return Result(workspaces: histories.count, signals: records.count, thresholdsVersion: thresholds.version, records: records,
                          insights: insights, failures: failures, vectors: vectors)
        }
    }

    public func run(asOf: Timestamp) throws -> Result {
        let result = try compute(asOf: asOf)
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(client: KafkaClientConfiguration(brokers: brokers)))
        try producer.send(
            result.records.map { KafkaOutgoingMessage(topic: signalsTopic, key: Array($0.workspaceID.utf8), value: $0.json()) }
                + result.insights.map { KafkaOutgoingMessage(topic: insightsTopic, key: Array($0.workspaceID.utf8), value: $0.json()) }
                + result.failures + result.vectors)
        logger.info("sweep published", metadata: ["as_of": "\(asOf)", "workspaces": "\(result.workspaces)", "signals": "\(result.signals)", "insights": "\(result.insights.count)", "vectors": "\(result.vectors.count)"])
        return result
    }
}

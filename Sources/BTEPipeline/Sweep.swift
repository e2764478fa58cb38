import BTECompute
import BTEDomain
import BTEStore
import Kafka
import Logging

/// `bte sweep --as-of T`: recomputes the time-dependent signals of every workspace active in
/// the window and publishes them. Read-only towards PostgreSQL.
public struct Sweep: Sendable {
    public struct Result: Sendable {
        public var workspaces = 0
        public var signals = 0
        public var thresholdsVersion = 0
        public var records: [SignalRecord] = []
        public var insights: [InsightRecord] = []
    }

    public var brokers: String
    public var readerURL: String
    public var topicPrefix = ""
    public var logger: Logger

    public init(brokers: String, readerURL: String, logger: Logger) {
        self.brokers = brokers
        self.readerURL = readerURL
        self.logger = logger
    }

    public var signalsTopic: String { topicPrefix + "bte.signals.v1" }
    public var insightsTopic: String { topicPrefix + "bte.insights.v1" }

    /// Computes without publishing, in one read-only snapshot: signals and insights of every
    /// workspace active in the window, in a deterministic order.
    public func compute(asOf: Timestamp) throws -> Result {
        let reader = try HistoryReader(url: readerURL)
        return try reader.snapshot {
            let thresholds = try ThresholdStore(connection: reader.connection).thresholds()
            let histories = try reader.workspaceHistories(asOf: asOf)
            let computer = SignalComputer(thresholds: thresholds)
            let records = histories.flatMap { computer.records($0, asOf: asOf) }
            let insights = try reader.insightHistories(histories.map(\.workspaceID), asOf: asOf).flatMap {
                InsightComputer().records($0, asOf: asOf, thresholdsVersion: thresholds.version)
            }
            return Result(workspaces: histories.count, signals: records.count, thresholdsVersion: thresholds.version, records: records, insights: insights)
        }
    }

    public func run(asOf: Timestamp) throws -> Result {
        let result = try compute(asOf: asOf)
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(client: KafkaClientConfiguration(brokers: brokers)))
        try producer.send(
            result.records.map { KafkaOutgoingMessage(topic: signalsTopic, key: Array($0.workspaceID.utf8), value: $0.json()) }
                + result.insights.map { KafkaOutgoingMessage(topic: insightsTopic, key: Array($0.workspaceID.utf8), value: $0.json()) })
        logger.info("sweep published", metadata: ["as_of": "\(asOf)", "workspaces": "\(result.workspaces)", "signals": "\(result.signals)", "insights": "\(result.insights.count)"])
        return result
    }
}

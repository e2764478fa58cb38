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

    /// Computes without publishing: the records in a deterministic order.
    public func compute(asOf: Timestamp) throws -> (records: [SignalRecord], workspaces: Int, thresholdsVersion: Int) {
        let reader = try HistoryReader(url: readerURL)
        return try reader.snapshot {
            let thresholds = try ThresholdStore(connection: reader.connection).thresholds()
            let histories = try reader.workspaceHistories(asOf: asOf)
            let computer = SignalComputer(thresholds: thresholds)
            let records = histories.flatMap { computer.records($0, asOf: asOf) }
            return (records, histories.count, thresholds.version)
        }
    }

    public func run(asOf: Timestamp) throws -> Result {
        let (records, workspaces, version) = try compute(asOf: asOf)
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(client: KafkaClientConfiguration(brokers: brokers)))
        try producer.send(records.map {
            KafkaOutgoingMessage(topic: signalsTopic, key: Array($0.workspaceID.utf8), value: $0.json())
        })
        logger.info("sweep published", metadata: ["as_of": "\(asOf)", "workspaces": "\(workspaces)", "signals": "\(records.count)"])
        return Result(workspaces: workspaces, signals: records.count, thresholdsVersion: version, records: records)
    }
}

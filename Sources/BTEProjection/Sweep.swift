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
        /// What the projection computed for them.
        public var outputs = ProjectionOutputs()

        public var signals: Int { outputs.signals.count }
        public var thresholdsVersion: Int { outputs.thresholdsVersion }
        public var records: [SignalRecord] { outputs.signals }
        public var insights: [InsightRecord] { outputs.insights }
        /// Dead letters for signals that could not be computed.
        public var failures: [KafkaOutgoingMessage] { outputs.failures }
        /// Behavioral vectors of the users active in the window, as published.
        public var vectors: [KafkaOutgoingMessage] { outputs.vectors }
    }

    public var brokers: String
    public var readerURL: String
    public var topicPrefix = ""
    /// Extra librdkafka properties for the producer.
    public var kafkaProperties: [String: String] = [:]
    public var logger: Logger
    public var metrics: any MetricsFactory = MetricsSystem.factory

    public init(brokers: String, readerURL: String, logger: Logger) {
        self.brokers = brokers
        self.readerURL = readerURL
        self.logger = logger
    }

    public var signalsTopic: String { OutputTopic.signals.name(prefix: topicPrefix) }
    public var insightsTopic: String { OutputTopic.insights.name(prefix: topicPrefix) }
    public var vectorsTopic: String { OutputTopic.behavioralVectors.name(prefix: topicPrefix) }

    /// Computes without publishing, in one read-only snapshot: the outputs of every workspace
    /// and user active in the window, as of `asOf`, in a deterministic order.
    public func compute(asOf: Timestamp) throws -> Result {
        let reader = try HistoryReader(url: readerURL)
        let projection = Projection(topicPrefix: topicPrefix, logger: logger, metrics: metrics, source: "bte.sweep")
        return try reader.snapshot {
            let workspaces = try reader.activeWorkspaces(asOf: asOf)
            let users = try reader.activeUsers(asOf: asOf)
            let outputs = try projection.compute(
                reader: reader, workspaces: Dictionary(uniqueKeysWithValues: workspaces.map { ($0, asOf) }),
                users: Dictionary(uniqueKeysWithValues: users.map { ($0, asOf) }))
            return Result(workspaces: workspaces.count, outputs: outputs)
        }
    }

    public func run(asOf: Timestamp) throws -> Result {
        let result = try compute(asOf: asOf)
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(
                client: KafkaClientConfiguration(brokers: brokers, properties: kafkaProperties)))
        try producer.send(result.outputs.messages(prefix: topicPrefix))
        logger.info(
            "sweep published",
            metadata: [
                "as_of": "\(asOf)", "workspaces": "\(result.workspaces)", "signals": "\(result.signals)",
                "insights": "\(result.insights.count)", "vectors": "\(result.vectors.count)",
            ])
        return result
    }
}

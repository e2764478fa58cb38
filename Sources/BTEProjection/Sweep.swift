import BTECompute
import BTEDomain
import BTEStore
import Dispatch
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
        /// Milliseconds of each stage (reads and computation), in order.
        public var stages: [(stage: String, milliseconds: Double)] = []
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
        let projection = Projection(topicPrefix: topicPrefix, logger: logger, metrics: metrics, source: "bte.sweep")
        var clock = StageClock(started: DispatchTime.now().uptimeNanoseconds)
        let readers = [try HistoryReader(url: readerURL), try HistoryReader(url: readerURL)]
        return try readers[0].sharedSnapshot(with: readers[1]) {
            let (workspaces, outputs) = try projection.sweep(readers: readers, asOf: asOf, clock: &clock)
            var result = Result(workspaces: workspaces, outputs: outputs)
            result.stages = clock.laps.map { ($0.0, Double($0.1) / 1e6) }
            return result
        }
    }

    public func run(asOf: Timestamp) throws -> Result {
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(
                client: KafkaClientConfiguration(brokers: brokers, properties: kafkaProperties)))
        // Erasures wait until what the sweep computes is published (`holdErasures`).
        let fence = try HistoryReader(url: readerURL)
        try fence.holdErasures()
        defer { fence.releaseErasures() }
        let result = try compute(asOf: asOf)
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

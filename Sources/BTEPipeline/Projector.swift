import BTECompute
import BTEDomain
import BTEStore
import Dispatch
import Foundation
import Kafka
import Logging
import Metrics
import Postgres

/// `bte project`: consumer group `bte-projector` over the business and interaction topics. For
/// every workspace (user) touched by a batch it waits until ingest has made the batch durable,
/// reads the history read-only, computes the signals (behavioral vector) as of the newest event
/// of that workspace (user) in the batch and publishes them; the group's offsets are committed
/// only once every output is acknowledged.
public final class Projector {
    public struct Configuration: Sendable {
        public var brokers: String
        public var readerURL: String
        public var group = "bte-projector"
        /// The ingest group whose stored offsets say what is durable.
        public var ingestGroup = "bte-ingest"
        public var topicPrefix = ""
        public var maxBatchMessages = 5_000
        public var maxBatchWaitMilliseconds = 250
        public var sessionTimeoutMilliseconds = 45_000
        /// Static group membership id; nil for dynamic membership.
        public var instanceID: String?
        public var untilIdle = false
        public var retryMaxMilliseconds = 10_000
        /// The same limits as ingest: a message ingest stored must not be skipped here.
        public var limits = ValidationLimits()
        /// Extra librdkafka properties for the consumer and the producer.
        public var kafkaProperties: [String: String] = [:]
        /// Called after each batch is published with, per message, milliseconds from its
        /// producer timestamp to the acknowledgement of the batch's outputs (benchmarks).
        public var onPublished: (@Sendable ([Int64]) -> Void)?
        public var metrics: any MetricsFactory = MetricsSystem.factory

        public init(brokers: String, readerURL: String) {
            self.brokers = brokers
            self.readerURL = readerURL
        }
    }

    public struct Summary: Sendable {
        public var consumed = 0
        public var batches = 0
        public var workspaces = 0
        public var signals = 0
        public var users = 0
        public var vectors = 0
        public var insights = 0
        public var retries = 0
        /// Seconds from the first message consumed to the last batch committed.
        public var activeSeconds = 0.0
    }

    private let configuration: Configuration
    private let logger: Logger
    private let validator: RecordValidator
    private var summary = Summary()
    private var position: [KafkaTopicPartition: Int64] = [:]
    private var firstMessageAt: DispatchTime?

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.validator = RecordValidator(limits: configuration.limits)
    }

    var businessTopic: String { configuration.topicPrefix + InputKind.business.rawValue }
    var interactionTopic: String { configuration.topicPrefix + InputKind.interaction.rawValue }
    var signalsTopic: String { configuration.topicPrefix + "bte.signals.v1" }
    var vectorsTopic: String { configuration.topicPrefix + "bte.behavioral-vectors.v1" }
    var insightsTopic: String { configuration.topicPrefix + "bte.insights.v1" }

    public func run(stop: StopSignal) throws -> Summary {
        var consumerConfiguration = KafkaConsumerConfiguration(
            client: KafkaClientConfiguration(brokers: configuration.brokers, properties: configuration.kafkaProperties), groupID: configuration.group)
        consumerConfiguration.sessionTimeoutMilliseconds = configuration.sessionTimeoutMilliseconds
        consumerConfiguration.groupInstanceID = configuration.instanceID
        let assigned = AssignedPartitions()
        let logger = self.logger
        let consumer = try KafkaConsumer(configuration: consumerConfiguration, rebalance: KafkaRebalanceHandler(
            assigned: { partitions in
                logger.info("projector partitions assigned", metadata: ["count": "\(partitions.count)"])
                assigned.partitions.formUnion(partitions)
                assigned.generation += 1
                return partitions.map { KafkaTopicPartitionOffset($0, offset: .committed) }
            },
            revoked: { partitions in
                assigned.partitions.subtract(partitions)
                assigned.generation += 1
            }))
        defer { consumer.close() }
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(
            client: KafkaClientConfiguration(brokers: configuration.brokers, properties: configuration.kafkaProperties)))
        try consumer.subscribe(topics: [businessTopic, interactionTopic])
        var reader: HistoryReader?

        var backoff = 250
        // Set when partitions were left paused or fetched past the batch: they restart from the
        // committed offsets before anything else is read.
        var needsRestart = false
        while !stop.isSet {
            let messages: [KafkaMessage]
            do {
                if needsRestart {
                    try restartFromCommitted(consumer, assigned: assigned)
                    needsRestart = false
                }
                messages = try collect(consumer, stop: stop, assigned: assigned)
            } catch {
                guard isRetriable(error) else { throw error }
                logger.warning("consumer error; retrying", metadata: ["error": "\(error)"])
                if keepAlive(consumer, assigned: assigned, milliseconds: backoff, stop: stop) { needsRestart = true }
                backoff = min(backoff * 2, configuration.retryMaxMilliseconds)
                continue
            }
            if messages.isEmpty {
                if configuration.untilIdle, caughtUp(consumer, assigned: assigned.partitions) { break }
                continue
            }
            var waited = 0
            while !stop.isSet {
                let wait: Int
                do {
                    if reader == nil || reader?.connection.isHealthy == false { reader = try HistoryReader(url: configuration.readerURL) }
                    guard let current = reader else { continue }
                    try project(messages, reader: current, producer: producer, consumer: consumer, stop: stop)
                    backoff = 250
                    break
                } catch let error as StoreError where error.code == .notDurable {
                    waited += 1
                    // Normal for a moment; worth saying when it lasts (is ingest running?).
                    if waited % 100 == 0 { logger.info("waiting for ingest to store the batch", metadata: ["detail": "\(error.message)"]) }
                    wait = 100
                } catch {
                    // Data can't be fixed by retrying: stop with the error rather than loop on it.
                    guard isRetriable(error) else { throw error }
                    summary.retries += 1
                    logger.warning("projection failed; retrying the batch", metadata: ["error": "\(error)", "retry_in_ms": "\(backoff)"])
                    wait = backoff
                    backoff = min(backoff * 2, configuration.retryMaxMilliseconds)
                }
                // Keep serving the group while waiting, or the member is evicted after
                // max.poll.interval.ms and its commit fails for good.
                if keepAlive(consumer, assigned: assigned, milliseconds: wait, stop: stop) {
                    // The assignment changed, or fetched messages arrived: read the batch again
                    // from the committed offsets (nothing of it was committed).
                    needsRestart = true
                    break
                }
            }
        }
        return summary
    }

    /// Polls with the assigned partitions paused for `milliseconds`. Returns whether the batch in
    /// hand is stale: a rebalance happened or a message was fetched meanwhile.
    private func keepAlive(_ consumer: KafkaConsumer, assigned: AssignedPartitions, milliseconds: Int, stop: StopSignal) -> Bool {
        let generation = assigned.generation
        let partitions = assigned.partitions.sorted()
        if !partitions.isEmpty { try? consumer.pause(partitions) }
        var stale = false
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(max(milliseconds, 1)) * 1_000_000
        while DispatchTime.now().uptimeNanoseconds < deadline, !stop.isSet {
            if (try? consumer.poll(timeoutMilliseconds: 50)) ?? nil != nil { stale = true }
        }
        stale = stale || assigned.generation != generation
        if !stale, !partitions.isEmpty { try? consumer.resume(partitions) }
        return stale
    }

    private func restartFromCommitted(_ consumer: KafkaConsumer, assigned: AssignedPartitions) throws {
        let partitions = assigned.partitions.sorted()
        for tp in partitions { position[tp] = nil }
        if !partitions.isEmpty { try consumer.assign(partitions.map { KafkaTopicPartitionOffset($0, offset: .committed) }) }
    }

    private func collect(_ consumer: KafkaConsumer, stop: StopSignal, assigned: AssignedPartitions) throws -> [KafkaMessage] {
        var messages: [KafkaMessage] = []
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(configuration.maxBatchWaitMilliseconds) * 1_000_000
        while messages.count < configuration.maxBatchMessages, !stop.isSet, DispatchTime.now().uptimeNanoseconds < deadline {
            guard let message = try consumer.poll(timeoutMilliseconds: messages.isEmpty ? 100 : 10) else {
                if !messages.isEmpty { break }
                continue
            }
            position[message.topicPartition] = message.offset + 1
            if firstMessageAt == nil { firstMessageAt = DispatchTime.now() }
            messages.append(message)
        }
        return messages
    }

    /// One batch: durable? → histories → signals → published → offsets committed.
    private func project(_ messages: [KafkaMessage], reader: HistoryReader, producer: KafkaProducer, consumer: KafkaConsumer, stop: StopSignal) throws {
        var next: [KafkaTopicPartition: Int64] = [:]
        var asOf: [String: Timestamp] = [:]
        var userAsOf: [String: Timestamp] = [:]
        for message in messages {
            next[message.topicPartition] = max(next[message.topicPartition] ?? 0, message.offset + 1)
            let kind: InputKind = message.topic == interactionTopic ? .interaction : .business
            guard case .success(let record) = validator.validate(kind: kind, key: message.key, value: message.value) else { continue }
            let owner = kind == .interaction ? "user_id" : "workspace_id"
            let entity = record.values[record.schema.fields.firstIndex { $0.name == owner } ?? 0] ?? ""
            if kind == .interaction {
                userAsOf[entity] = max(userAsOf[entity] ?? record.timestamp, record.timestamp)
            } else {
                asOf[entity] = max(asOf[entity] ?? record.timestamp, record.timestamp)
            }
        }
        try reader.waitUntilDurable(group: configuration.ingestGroup, next: next.map { ($0.key.topic, $0.key.partition, $0.value) })
        let (records, vectors, insights, failures) = try reader.snapshot {
            let thresholds = try ThresholdStore(connection: reader.connection).thresholds()
            let computer = SignalComputer(thresholds: thresholds)
            let reporter = ComputationFailures(logger: logger, metrics: configuration.metrics,
                                               deadLetterTopic: configuration.topicPrefix + "bte.dead-letter.v1", source: businessTopic)
            var records: [SignalRecord] = []
            var failures: [KafkaOutgoingMessage] = []
            for history in try reader.workspaceHistories(asOf) {
                let at = asOf[history.workspaceID] ?? Timestamp(microseconds: 0)
                let evaluated = computer.evaluateRecords(history, asOf: at)
                records += evaluated.records
                failures += reporter.report(workspaceID: history.workspaceID, failed: evaluated.failed, asOf: at)
            }
            let interactions = Dictionary(grouping: try reader.interactions(userAsOf), by: \.userID)
            let vectors = userAsOf.keys.sorted().compactMap { user -> KafkaOutgoingMessage? in
                let history = interactions[user] ?? []
                guard let at = userAsOf[user], let vector = VectorComputer().compute(userID: user, interactions: history, asOf: at) else { return nil }
                return KafkaOutgoingMessage(topic: vectorsTopic, key: Array(user.utf8),
                                            value: vector.json(thresholdsVersion: thresholds.version, computedFrom: vector.totalInteractions))
            }
            let insights = try reader.insightHistories(asOf).flatMap { history in
                InsightComputer().records(history, asOf: asOf[history.workspaceID] ?? Timestamp(microseconds: 0), thresholdsVersion: thresholds.version)
            }.map { KafkaOutgoingMessage(topic: insightsTopic, key: Array($0.workspaceID.utf8), value: $0.json()) }
            return (records, vectors, insights, failures)
        }
        let signals = records.map { KafkaOutgoingMessage(topic: signalsTopic, key: Array($0.workspaceID.utf8), value: $0.json()) }
        try producer.send(signals + vectors + insights + failures)
        try consumer.commit(next)
        if let onPublished = configuration.onPublished {
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            onPublished(messages.compactMap { $0.timestampMilliseconds.map { now - $0 } })
        }
        summary.consumed += messages.count
        summary.batches += 1
        if let firstMessageAt { summary.activeSeconds = Double(DispatchTime.now().uptimeNanoseconds - firstMessageAt.uptimeNanoseconds) / 1e9 }
        summary.workspaces += asOf.count
        summary.signals += records.count
        summary.users += userAsOf.count
        summary.vectors += vectors.count
        summary.insights += insights.count
    }

    private func caughtUp(_ consumer: KafkaConsumer, assigned: Set<KafkaTopicPartition>) -> Bool {
        guard !assigned.isEmpty else { return false }
        return assigned.allSatisfy { tp in
            guard let marks = consumer.cachedWatermarks(tp) else { return false }
            return (position[tp] ?? marks.low ?? 0) >= marks.high
        }
    }
}

/// Partitions assigned to the projector; touched only on the polling thread (librdkafka runs
/// rebalance callbacks inside `poll`).
final class AssignedPartitions: @unchecked Sendable {
    var partitions: Set<KafkaTopicPartition> = []
    /// Changes on every assignment and revocation.
    var generation = 0
}

import BTEDomain
import BTEStore
import BTEWorker
import Dispatch
import Foundation
import Kafka
import Logging
import Metrics
import Postgres

/// Totals of one `bte sink` run.
public struct SinkSummary: Sendable, Equatable {
    public var consumed = 0
    public var stored = SinkOutcome()
    public var rejected: [RejectionCode: Int] = [:]
    public var batches = 0
    public var retries = 0

    public func render() -> String {
        var line =
            "consumed \(consumed) messages in \(batches) batches; stored \(stored.signals) signal values, "
            + "\(stored.vectors) vectors, \(stored.insights) insights, \(stored.deliveries) insight deliveries"
        let rejects = rejected.values.reduce(0, +)
        if rejects > 0 { line += "; rejected \(rejects) (sent to the dead-letter topic)" }
        return line
    }
}

/// `bte sink`: copies the output topics into the tables the HTTP API reads, in group
/// `bte-sink`, with ingest's machinery: the same ledger of partitions, and each batch's rows
/// and next offsets in one PostgreSQL transaction behind the same fence, so every record is
/// stored exactly once whatever crashes or rebalances in between. One writer: the outputs are a
/// small fraction of the inputs.
public final class SinkWorker {
    public let configuration: IngestConfiguration
    private let logger: Logger
    private let metrics: any MetricsFactory
    private let box = SinkBox()
    private var summary = SinkSummary()

    public static let topics: [OutputTopic] = [.signals, .behavioralVectors, .insights, .insightDeliveries]

    /// `configuration.group` should be `bte-sink`; batch, retry and Kafka settings are ingest's.
    public init(
        configuration: IngestConfiguration, logger: Logger, metrics: any MetricsFactory = MetricsSystem.factory
    ) {
        self.configuration = configuration
        self.logger = logger
        self.metrics = metrics
    }

    public func run(stop: StopSignal) throws -> SinkSummary {
        let topics = SinkWorker.topics.map { $0.name(prefix: configuration.topicPrefix) }
        var consumerConfig = KafkaConsumerConfiguration(
            client: KafkaClientConfiguration(brokers: configuration.brokers, properties: configuration.kafkaProperties),
            groupID: configuration.group)
        consumerConfig.sessionTimeoutMilliseconds = configuration.sessionTimeoutMilliseconds
        consumerConfig.groupInstanceID = configuration.instanceID
        consumerConfig.fetchWaitMaxMilliseconds = configuration.fetchWaitMilliseconds
        var producerConfig = KafkaProducerConfiguration(
            client: KafkaClientConfiguration(brokers: configuration.brokers, properties: configuration.kafkaProperties))
        producerConfig.lingerMilliseconds = 1
        let deadLetters = try KafkaProducer(configuration: producerConfig)

        let box = self.box
        let logger = self.logger
        let consumer = try KafkaConsumer(
            configuration: consumerConfig,
            rebalance: box.rebalanceHandler(
                logger: logger,
                stored: { topics in
                    guard let store = box.store else { throw PostgresError(.connection, message: "not connected") }
                    return try store.storedOffsets(topics: topics)
                }))
        // Writes are synchronous between polls: nothing is in flight when partitions are revoked.
        defer { consumer.close(timeoutMilliseconds: configuration.shutdownGraceMilliseconds) }
        configuration.readiness?.register("sink")
        defer { configuration.readiness?.set("sink", ready: false) }
        box.store = try connect(stop: stop)
        try consumer.subscribe(topics: topics)
        logger.info("sink started", metadata: ["group": "\(configuration.group)", "topics": "\(topics)"])
        configuration.readiness?.set("sink", ready: true)

        var backoff = configuration.retryInitialMilliseconds
        while !stop.isSet {
            do {
                if box.ledger.needsRewind {
                    try rewind(consumer)
                    configuration.readiness?.set("sink", ready: true)
                }
                let messages = try collectBatch(consumer, stop: stop)
                if messages.isEmpty {
                    if configuration.untilIdle, box.ledger.caughtUp(high: consumer.cachedWatermarks) { break }
                    continue
                }
                try write(messages, deadLetters: deadLetters)
                reportLag(consumer)
                backoff = configuration.retryInitialMilliseconds
            } catch {
                if stop.isSet { break }
                guard isRetriable(error) else { throw error }
                summary.retries += 1
                configuration.readiness?.set("sink", ready: false)
                box.holdOff(
                    consumer, after: error, backoff: &backoff, configuration: configuration, stop: stop, logger: logger)
            }
        }
        logger.info("sink stopping", metadata: ["summary": "\(summary.render())"])
        return summary
    }

    /// Reads the messages into rows (refusing what isn't an output record) and writes them with
    /// their partitions' next offsets in one transaction; dead letters are acknowledged before
    /// it commits.
    private func write(_ messages: [KafkaMessage], deadLetters: KafkaProducer) throws {
        guard let store = box.store else {
            box.ledger.requireRewind()
            return
        }
        let started = DispatchTime.now()
        let (id, progress) = box.ledger.dispatch(messages, lane: 0)
        var batch = SinkBatch()
        batch.progress = progress
        var rejects: [RejectedMessage] = []
        // The message each row came from, by kind, for the rows PostgreSQL may refuse.
        var sources: [SinkRefusal.Kind: [KafkaMessage]] = [:]
        let configuration = self.configuration
        func rejected(_ message: KafkaMessage, _ rejection: Rejection) -> RejectedMessage {
            RejectedMessage(
                source: SourcePosition(topic: message.topic, partition: message.partition, offset: message.offset),
                key: message.key, value: message.value, rejection: rejection)
        }
        for message in messages {
            guard
                let topic = SinkWorker.topics.first(where: {
                    $0.name(prefix: configuration.topicPrefix) == message.topic
                })
            else { continue }
            // A tombstone on the compacted vectors topic ends the user's vectors (a withdrawn
            // consent to a profile, or an erasure, which already deleted the rows): the stored
            // vector goes. Its key, a user id, is never dead-lettered.
            if topic == .behavioralVectors && (message.value?.isEmpty ?? true) {
                if let key = message.key, let user = UserKey(topicKey: String(decoding: key, as: UTF8.self)) {
                    batch.endedVectors.insert(user)
                }
                continue
            }
            switch SinkRecords.row(topic: topic, value: message.value) {
            case .success(.signal(let signal)):
                batch.signals.append(signal)
                sources[.signal, default: []].append(message)
            case .success(.vector(let vector)):
                batch.endedVectors.remove(vector.user)
                batch.vectors.append(vector)
                sources[.vector, default: []].append(message)
            case .success(.insight(let insight)):
                batch.insights.append(insight)
                sources[.insight, default: []].append(message)
            case .success(.delivery(let delivery)):
                batch.deliveries.append(delivery)
                sources[.delivery, default: []].append(message)
            case .failure(let rejection):
                rejects.append(rejected(message, rejection))
            }
        }
        let outcome: SinkOutcome
        do {
            outcome = try store.commit(batch) { refused in
                for refusal in refused {
                    guard let message = sources[refusal.kind]?[refusal.index] else { continue }
                    rejects.append(
                        rejected(
                            message,
                            Rejection(.storageRejected, "PostgreSQL refused the record [\(refusal.sqlState)]")))
                }
                guard !rejects.isEmpty else { return }
                let now = Timestamp(microseconds: Int64(Date().timeIntervalSince1970 * 1_000_000)).rfc3339
                try deadLetters.send(
                    rejects.map {
                        DeadLetter.message(
                            for: $0, topic: configuration.deadLetterTopic, rejectedAt: now,
                            maxRecordBytes: configuration.deadLetterMaxRecordBytes)
                    })
            }
        } catch {
            box.ledger.finished(id, succeeded: false)
            if !store.isHealthy { box.store = nil }
            throw error
        }
        box.ledger.finished(id, succeeded: true)
        summary.consumed += messages.count
        summary.batches += 1
        summary.stored.signals += outcome.signals
        summary.stored.vectors += outcome.vectors
        summary.stored.insights += outcome.insights
        summary.stored.deliveries += outcome.deliveries
        Counter(label: "bte_sink_messages_consumed_total", factory: metrics).increment(by: messages.count)
        for (table, count) in [
            ("signal_values", outcome.signals), ("bv_history", outcome.vectors), ("insights", outcome.insights),
            ("insight_deliveries", outcome.deliveries),
        ] where count > 0 {
            Counter(label: "bte_sink_rows_stored_total", dimensions: [("table", table)], factory: metrics)
                .increment(by: count)
        }
        for reject in rejects {
            summary.rejected[reject.rejection.code, default: 0] += 1
            Counter(
                label: "bte_sink_rejected_total", dimensions: [("code", reject.rejection.code.rawValue)],
                factory: metrics
            ).increment()
            logger.warning(
                "not an output record; dead-lettered",
                metadata: ["source": "\(reject.source)", "code": "\(reject.rejection.code.rawValue)"])
        }
        Metrics.Timer(label: "bte_sink_batch_duration_seconds", factory: metrics)
            .recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds))
    }

    private func rewind(_ consumer: KafkaConsumer) throws {
        if box.store == nil || box.store?.isHealthy == false {
            box.store = try SinkStore(url: configuration.databaseURL, group: configuration.group)
        }
        guard let store = box.store else { return }
        let targets = box.ledger.rewindTargets()
        let offsets = box.started(targets, stored: try store.storedOffsets(topics: Array(Set(targets.map(\.topic)))))
        if !offsets.isEmpty { try consumer.assign(offsets) }
        logger.info("resumed from stored offsets", metadata: ["partitions": "\(targets.count)"])
    }

    private func connect(stop: StopSignal) throws -> SinkStore? {
        try connectRetrying(configuration: configuration, stop: stop, logger: logger) {
            try SinkStore(url: configuration.databaseURL, group: configuration.group)
        }
    }

    /// A batch closes as soon as nothing fetched is waiting once it holds something (no
    /// linger: the projector's outputs come in bursts).
    private func collectBatch(_ consumer: KafkaConsumer, stop: StopSignal) throws -> [KafkaMessage] {
        try box.collectBatch(consumer, configuration: configuration, linger: 0, stop: stop)
    }

    private func reportLag(_ consumer: KafkaConsumer) {
        for (tp, partition) in box.ledger.partitions {
            guard let position = partition.position ?? partition.stored, let high = consumer.cachedWatermarks(tp)?.high
            else { continue }
            Gauge(
                label: "bte_sink_lag_messages",
                dimensions: [("topic", tp.topic), ("partition", String(tp.partition))], factory: metrics
            )
            .record(max(high - position, 0))
        }
    }
}

/// The ledger and the store, shared with the rebalance callbacks (which run inside `poll`, on
/// the polling thread).
final class SinkBox: @unchecked Sendable {
    var ledger = IngestLedger()
    var store: SinkStore?
}

import BTEDomain
import BTEStore
import Dispatch
import Foundation
import Kafka
import Logging
import Metrics
import Postgres
import Synchronization

/// The consumer's view of its partitions. Touched only from the polling thread: librdkafka
/// runs rebalance callbacks inside `poll`, on the caller's thread.
final class PartitionTable: @unchecked Sendable {
    /// Assigned partitions and the `next_offset` believed stored in PostgreSQL (nil: none).
    var stored: [KafkaTopicPartition: Int64?] = [:]
    /// Next offset to process per partition; older messages are stale re-deliveries.
    var position: [KafkaTopicPartition: Int64] = [:]
    var needsRewind = false
    var revokedDuringBatch: Set<KafkaTopicPartition> = []
    var store: IngestStore?
}

/// `bte ingest`: consumes the input topics in group `bte-ingest` and appends each batch, its
/// rejects and its next offsets to PostgreSQL in one transaction.
public final class IngestWorker {
    public let configuration: IngestConfiguration
    private let logger: Logger
    private let validator: RecordValidator
    private let table = PartitionTable()
    private var summary = IngestSummary()

    private let consumedCounter = Counter(label: "bte_ingest_messages_consumed_total")
    private let batchSize = Recorder(label: "bte_ingest_batch_size")
    private let batchLatency = Metrics.Timer(label: "bte_ingest_batch_duration_seconds")
    private let retryCounter = Counter(label: "bte_ingest_retries_total")

    public init(configuration: IngestConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.validator = RecordValidator(limits: configuration.limits)
    }

    /// Runs until `stop` is set (or, with `untilIdle`, until caught up). Returns what it did.
    /// Throws only for errors that retrying can't fix.
    public func run(stop: StopSignal) throws -> IngestSummary {
        let topics = InputKind.allCases.map(configuration.topic)
        var consumerConfig = KafkaConsumerConfiguration(
            client: KafkaClientConfiguration(brokers: configuration.brokers, properties: configuration.kafkaProperties),
            groupID: configuration.group)
        consumerConfig.sessionTimeoutMilliseconds = configuration.sessionTimeoutMilliseconds
        var producerConfig = KafkaProducerConfiguration(
            client: KafkaClientConfiguration(brokers: configuration.brokers, properties: configuration.kafkaProperties))
        producerConfig.lingerMilliseconds = 1
        let deadLetters = try KafkaProducer(configuration: producerConfig)

        let table = self.table
        let logger = self.logger
        let consumer = try KafkaConsumer(configuration: consumerConfig, rebalance: KafkaRebalanceHandler(
            assigned: { partitions in
                for partition in partitions { table.stored[partition] = .some(nil) }
                logger.info("partitions assigned", metadata: ["partitions": "\(partitions.sorted())"])
                do {
                    guard let store = table.store else { throw PostgresError(.connection, message: "not connected") }
                    return try IngestWorker.startOffsets(partitions, store: store, table: table)
                } catch {
                    logger.warning("stored offsets unavailable; partitions held until PostgreSQL answers", metadata: ["error": "\(error)"])
                    table.needsRewind = true
                    return nil
                }
            },
            revoked: { partitions in
                logger.info("partitions revoked", metadata: ["partitions": "\(partitions.sorted())"])
                for partition in partitions {
                    table.stored[partition] = nil
                    table.position[partition] = nil
                    table.revokedDuringBatch.insert(partition)
                }
            }))
        defer { consumer.close() }
        table.store = try connectWithRetry(stop: stop)
        try consumer.subscribe(topics: topics)
        logger.info("ingest started", metadata: ["group": "\(configuration.group)", "topics": "\(topics)"])

        var backoff = configuration.retryInitialMilliseconds
        var firstMessageAt: DispatchTime?
        while !stop.isSet {
            if table.needsRewind {
                do {
                    try rewind(consumer)
                    backoff = configuration.retryInitialMilliseconds
                } catch {
                    try pause(consumer, after: error, backoff: &backoff, stop: stop)
                    continue
                }
            }
            table.revokedDuringBatch = []
            let messages = try collectBatch(consumer, stop: stop)
            if messages.isEmpty {
                if configuration.untilIdle, try caughtUp(consumer) { break }
                continue
            }
            if firstMessageAt == nil { firstMessageAt = DispatchTime.now() }
            let started = DispatchTime.now()
            do {
                guard let store = table.store else { throw PostgresError(.connection, message: "not connected") }
                try writeBatch(messages, store: store, deadLetters: deadLetters)
                backoff = configuration.retryInitialMilliseconds
                batchLatency.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds))
                if let firstMessageAt {
                    summary.activeSeconds = Double(DispatchTime.now().uptimeNanoseconds - firstMessageAt.uptimeNanoseconds) / 1e9
                }
                reportLag(consumer)
            } catch {
                try pause(consumer, after: error, backoff: &backoff, stop: stop)
            }
        }
        logger.info("ingest stopping", metadata: ["consumed": "\(summary.consumed)", "stored": "\(summary.totalStored)"])
        return summary
    }

    static func startOffsets(_ partitions: [KafkaTopicPartition], store: IngestStore, table: PartitionTable) throws -> [KafkaTopicPartitionOffset] {
        let stored = try store.storedOffsets(topics: Array(Set(partitions.map(\.topic))))
        return partitions.map { partition in
            let next = stored[partition.topic]?[partition.partition]
            table.stored[partition] = .some(next)
            if let next { table.position[partition] = next } else { table.position[partition] = nil }
            return KafkaTopicPartitionOffset(partition, offset: next.map { .exactly($0) } ?? .beginning)
        }
    }

    /// Restarts every assigned partition from what PostgreSQL holds, dropping anything
    /// fetched but not written.
    private func rewind(_ consumer: KafkaConsumer) throws {
        if table.store == nil || table.store?.connection.isHealthy == false {
            table.store = try IngestStore(url: configuration.databaseURL, group: configuration.group)
        }
        guard let store = table.store else { return }
        let assigned = Array(table.stored.keys)
        if !assigned.isEmpty {
            try consumer.assign(try IngestWorker.startOffsets(assigned, store: store, table: table))
        }
        table.needsRewind = false
        logger.info("resumed from stored offsets", metadata: ["partitions": "\(assigned.count)"])
    }

    /// Classifies a failure: data can't cause it (rejects are handled per message), so it is
    /// infrastructure. Retriable ones pause consumption and back off; others end the run.
    private func pause(_ consumer: KafkaConsumer, after error: any Error, backoff: inout Int, stop: StopSignal) throws {
        let retriable: Bool
        switch error {
        case let error as PostgresError: retriable = error.isRetriable
        case let error as KafkaError: retriable = error.isRetriable
        case let error as StoreError: retriable = error.isRetriable
        default: retriable = false
        }
        guard retriable else { throw error }
        summary.retries += 1
        retryCounter.increment()
        logger.warning("infrastructure error; pausing and retrying", metadata: ["error": "\(error)", "retry_in_ms": "\(backoff)"])
        table.needsRewind = true
        if !table.stored.isEmpty { try? consumer.pause(Array(table.stored.keys)) }
        if table.store?.connection.isHealthy == false { table.store = nil }
        // Keep serving the group while waiting, so the session stays alive.
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(backoff) * 1_000_000
        while DispatchTime.now().uptimeNanoseconds < deadline, !stop.isSet {
            _ = try? consumer.poll(timeoutMilliseconds: 100)
        }
        backoff = min(backoff * 2, configuration.retryMaxMilliseconds)
    }

    private func connectWithRetry(stop: StopSignal) throws -> IngestStore? {
        var backoff = configuration.retryInitialMilliseconds
        while true {
            do {
                return try IngestStore(url: configuration.databaseURL, group: configuration.group)
            } catch let error as PostgresError where error.code == .connection && !stop.isSet {
                logger.warning("PostgreSQL unavailable; retrying", metadata: ["error": "\(error)", "retry_in_ms": "\(backoff)"])
                Thread.sleep(forTimeInterval: Double(backoff) / 1000)
                backoff = min(backoff * 2, configuration.retryMaxMilliseconds)
            }
            if stop.isSet { return nil }
        }
    }

    private func collectBatch(_ consumer: KafkaConsumer, stop: StopSignal) throws -> [KafkaMessage] {
        var messages: [KafkaMessage] = []
        messages.reserveCapacity(configuration.maxBatchMessages)
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(configuration.maxBatchWaitMilliseconds) * 1_000_000
        while messages.count < configuration.maxBatchMessages, !stop.isSet {
            let now = DispatchTime.now().uptimeNanoseconds
            if now >= deadline { break }
            let remaining = Int32(min((deadline - now) / 1_000_000 + 1, 1_000))
            guard let message = try consumer.poll(timeoutMilliseconds: messages.isEmpty ? remaining : min(remaining, 20)) else {
                if !messages.isEmpty { break }
                continue
            }
            if table.needsRewind { continue }
            let tp = message.topicPartition
            guard table.stored[tp] != nil else { continue }  // not ours (anymore)
            if let position = table.position[tp], message.offset < position { continue }  // stale
            table.position[tp] = message.offset + 1
            messages.append(message)
        }
        if !table.revokedDuringBatch.isEmpty {
            messages.removeAll { table.revokedDuringBatch.contains($0.topicPartition) }
        }
        return messages
    }

    private func writeBatch(_ messages: [KafkaMessage], store: IngestStore, deadLetters: KafkaProducer) throws {
        var batch = IngestBatch()
        var next: [KafkaTopicPartition: Int64] = [:]
        for message in messages {
            let source = SourcePosition(topic: message.topic, partition: message.partition, offset: message.offset)
            next[message.topicPartition] = message.offset + 1
            guard let kind = configuration.kind(ofTopic: message.topic) else { continue }
            switch validator.validate(kind: kind, key: message.key, value: message.value) {
            case .success(let record):
                batch.records.append(IncomingRecord(record: record, source: source, key: message.key, value: message.value))
            case .failure(let rejection):
                batch.rejects.append(RejectedMessage(source: source, key: message.key, value: message.value, rejection: rejection))
            }
        }
        batch.progress = next.keys.sorted().map { tp in
            PartitionProgress(topic: tp.topic, partition: tp.partition, expectedStored: table.stored[tp] ?? nil, next: next[tp] ?? 0)
        }
        let deadLetterTopic = configuration.deadLetterTopic
        let outcome = try store.commit(batch) { rejects in
            guard !rejects.isEmpty else { return }
            let now = Timestamp(microseconds: Int64(Date().timeIntervalSince1970 * 1_000_000)).rfc3339
            try deadLetters.send(rejects.map { DeadLetter.message(for: $0, topic: deadLetterTopic, rejectedAt: now) })
        }
        for (tp, offset) in next { table.stored[tp] = .some(offset) }
        record(outcome, consumed: messages.count)
    }

    private func record(_ outcome: IngestOutcome, consumed: Int) {
        summary.consumed += consumed
        summary.batches += 1
        consumedCounter.increment(by: consumed)
        batchSize.record(consumed)
        for (table, count) in outcome.stored {
            summary.stored[table, default: 0] += count
            Counter(label: "bte_ingest_events_stored_total", dimensions: [("log", table.rawValue)]).increment(by: count)
        }
        for (table, count) in outcome.duplicates where count > 0 {
            summary.duplicates[table, default: 0] += count
            Counter(label: "bte_ingest_duplicates_total", dimensions: [("log", table.rawValue)]).increment(by: count)
        }
        for reject in outcome.rejects {
            summary.rejected[reject.rejection.code, default: 0] += 1
            Counter(label: "bte_ingest_rejected_total", dimensions: [("code", reject.rejection.code.rawValue)]).increment()
            logger.debug("rejected", metadata: ["source": "\(reject.source)", "code": "\(reject.rejection.code.rawValue)"])
        }
    }

    private func reportLag(_ consumer: KafkaConsumer) {
        for (tp, position) in table.position {
            guard let high = consumer.cachedWatermarks(tp)?.high else { continue }
            Gauge(label: "bte_ingest_lag_messages", dimensions: [("topic", tp.topic), ("partition", String(tp.partition))])
                .record(max(high - position, 0))
        }
    }

    /// Every assigned partition has been fetched at least once and nothing is left past the
    /// last processed offset.
    private func caughtUp(_ consumer: KafkaConsumer) throws -> Bool {
        guard !table.stored.isEmpty, !table.needsRewind else { return false }
        for (tp, stored) in table.stored {
            guard let marks = consumer.cachedWatermarks(tp) else { return false }
            let next = table.position[tp] ?? stored ?? marks.low ?? 0
            if next < marks.high { return false }
        }
        return true
    }
}

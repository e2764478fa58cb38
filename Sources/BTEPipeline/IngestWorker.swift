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
    /// Reads stored offsets on assignment; never used by a writer.
    var control: IngestStore?
    /// Waits for the writes in flight; set by the worker, called before partitions are revoked.
    var drain: (() -> Void)?
}

/// One writer: its own PostgreSQL connection and dead-letter producer, and the batches handed
/// to it, written in order on its own serial queue. `store` is replaced by the polling thread
/// only while nothing is queued; `flights` is touched by the polling thread only.
final class WriteLane: @unchecked Sendable {
    let index: Int
    var store: IngestStore?
    let deadLetters: KafkaProducer
    let queue: DispatchQueue
    /// Batches handed to the lane and not yet booked, oldest first.
    var flights: [InFlight] = []

    final class InFlight: @unchecked Sendable {
        let done = DispatchGroup()
        let next: [KafkaTopicPartition: Int64]
        let consumed: Int
        let started = DispatchTime.now()
        // Written by the lane's queue before `done` is left, read after `done.wait()`.
        var result: Result<IngestOutcome, any Error> = .failure(CancellationError())
        var validateNanoseconds: UInt64 = 0
        init(next: [KafkaTopicPartition: Int64], consumed: Int) {
            self.next = next
            self.consumed = consumed
        }
    }

    init(index: Int, deadLetters: KafkaProducer) {
        self.index = index
        self.deadLetters = deadLetters
        self.queue = DispatchQueue(label: "bte.ingest.writer.\(index)")
    }
}

/// `bte ingest`: consumes the input topics in group `bte-ingest` and appends each batch, its
/// rejects and its next offsets to PostgreSQL in one transaction per writer.
///
/// The polling thread reads ahead while the writers validate and append earlier batches (up
/// to `batchesQueuedPerWriter` each). A partition stays on one writer, so its batches are
/// written in order, and each transaction holds whole partitions' progress.
public final class IngestWorker {
    public let configuration: IngestConfiguration
    private let logger: Logger
    private let validator: RecordValidator
    private let table = PartitionTable()
    private var lanes: [WriteLane] = []
    private var laneIndex: [KafkaTopicPartition: Int] = [:]
    private var summary = IngestSummary()
    private var firstMessageAt: DispatchTime?

    private let metrics: any MetricsFactory
    private let consumedCounter: Counter
    private let batchSize: Recorder
    private let batchLatency: Metrics.Timer
    private let retryCounter: Counter

    /// Metrics go to `metrics` (the process-wide factory unless a test passes its own).
    public init(configuration: IngestConfiguration, logger: Logger, metrics: any MetricsFactory = MetricsSystem.factory) {
        self.configuration = configuration
        self.logger = logger
        self.validator = RecordValidator(limits: configuration.limits)
        self.metrics = metrics
        consumedCounter = Counter(label: "bte_ingest_messages_consumed_total", factory: metrics)
        batchSize = Recorder(label: "bte_ingest_batch_size", factory: metrics)
        batchLatency = Metrics.Timer(label: "bte_ingest_batch_duration_seconds", factory: metrics)
        retryCounter = Counter(label: "bte_ingest_retries_total", factory: metrics)
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
        lanes = try (0..<max(configuration.writers, 1)).map { WriteLane(index: $0, deadLetters: try KafkaProducer(configuration: producerConfig)) }

        let table = self.table
        let logger = self.logger
        let consumer = try KafkaConsumer(configuration: consumerConfig, rebalance: KafkaRebalanceHandler(
            assigned: { partitions in
                for partition in partitions { table.stored[partition] = .some(nil) }
                logger.info("partitions assigned", metadata: ["partitions": "\(partitions.sorted())"])
                do {
                    guard let store = table.control else { throw PostgresError(.connection, message: "not connected") }
                    return try IngestWorker.startOffsets(partitions, store: store, table: table)
                } catch {
                    logger.warning("stored offsets unavailable; partitions held until PostgreSQL answers", metadata: ["error": "\(error)"])
                    table.needsRewind = true
                    return nil
                }
            },
            revoked: { partitions in
                // Let batches in flight commit before another member takes the partitions over.
                table.drain?()
                logger.info("partitions revoked", metadata: ["partitions": "\(partitions.sorted())"])
                for partition in partitions {
                    table.stored[partition] = nil
                    table.position[partition] = nil
                    table.revokedDuringBatch.insert(partition)
                }
            }))
        defer { consumer.close() }
        table.drain = { [unowned self] in self.drainLanes() }
        defer { table.drain = nil }
        table.control = try connectWithRetry(stop: stop)
        for lane in lanes { lane.store = try connectWithRetry(stop: stop) }
        try consumer.subscribe(topics: topics)
        logger.info("ingest started", metadata: ["group": "\(configuration.group)", "topics": "\(topics)", "writers": "\(lanes.count)"])

        var backoff = configuration.retryInitialMilliseconds
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
            let pollStarted = DispatchTime.now()
            let messages = try collectBatch(consumer, stop: stop)
            if firstMessageAt != nil {
                summary.pollSeconds += Double(DispatchTime.now().uptimeNanoseconds - pollStarted.uptimeNanoseconds) / 1e9
            }
            do {
                if messages.isEmpty {
                    if lanes.contains(where: { !$0.flights.isEmpty }) {
                        try finishLanes()
                        reportLag(consumer)
                        continue
                    }
                    if configuration.untilIdle, try caughtUp(consumer) { break }
                    continue
                }
                if firstMessageAt == nil { firstMessageAt = DispatchTime.now() }
                try dispatch(messages)
                backoff = configuration.retryInitialMilliseconds
            } catch {
                try pause(consumer, after: error, backoff: &backoff, stop: stop)
            }
        }
        do {
            try finishLanes()
        } catch {
            logger.warning("last batch not written; it will be read again", metadata: ["error": "\(error)"])
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
        drainLanes()
        if table.control == nil || table.control?.connection.isHealthy == false {
            table.control = try IngestStore(url: configuration.databaseURL, group: configuration.group)
        }
        for lane in lanes where lane.store == nil || lane.store?.connection.isHealthy == false {
            lane.store = try IngestStore(url: configuration.databaseURL, group: configuration.group)
        }
        guard let control = table.control else { return }
        let assigned = Array(table.stored.keys)
        if !assigned.isEmpty {
            try consumer.assign(try IngestWorker.startOffsets(assigned, store: control, table: table))
        }
        table.needsRewind = false
        logger.info("resumed from stored offsets", metadata: ["partitions": "\(assigned.count)"])
    }

    /// Classifies a failure: data can't cause it (rejects are handled per message), so it is
    /// infrastructure. Retriable ones pause consumption and back off; others end the run.
    private func pause(_ consumer: KafkaConsumer, after error: any Error, backoff: inout Int, stop: StopSignal) throws {
        drainLanes()
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

    /// A partition stays on one lane for the life of the worker, so its batches are written in
    /// order; each new partition goes to the lane with the fewest, so the lanes share the load.
    private func lane(of tp: KafkaTopicPartition) -> WriteLane {
        if let index = laneIndex[tp] { return lanes[index] }
        var counts = [Int](repeating: 0, count: lanes.count)
        for index in laneIndex.values { counts[index] += 1 }
        let index = counts.indices.min { counts[$0] < counts[$1] } ?? 0
        laneIndex[tp] = index
        return lanes[index]
    }

    /// Queues each lane's part of the batch behind the lane's earlier batches, waiting only when
    /// the lane's queue is full. The lane validates and writes on its own queue; the fence
    /// expectations are fixed here, where the partition table lives: each batch expects what the
    /// lane's newest earlier batch of the partition leaves stored, else what PostgreSQL holds.
    /// If a batch fails, later batches of its partitions fail their fence and are not written.
    private func dispatch(_ messages: [KafkaMessage]) throws {
        var byLane: [Int: [KafkaMessage]] = [:]
        for message in messages { byLane[lane(of: message.topicPartition).index, default: []].append(message) }
        for (index, part) in byLane.sorted(by: { $0.key < $1.key }) {
            let lane = lanes[index]
            while lane.flights.count >= max(configuration.batchesQueuedPerWriter, 1) { try finishOldest(lane) }
            var pending: [KafkaTopicPartition: Int64] = [:]
            for flight in lane.flights { pending.merge(flight.next) { _, newer in newer } }
            var next: [KafkaTopicPartition: Int64] = [:]
            for message in part { next[message.topicPartition] = message.offset + 1 }
            let progress = next.keys.sorted().map { tp in
                PartitionProgress(topic: tp.topic, partition: tp.partition, expectedStored: pending[tp] ?? (table.stored[tp] ?? nil), next: next[tp] ?? 0)
            }
            start(lane, messages: part, progress: progress, next: next)
        }
    }

    /// Validates messages into a batch. Pure apart from reading the configuration.
    static func prepare(_ messages: [KafkaMessage], progress: [PartitionProgress], validator: RecordValidator, configuration: IngestConfiguration) -> IngestBatch {
        var batch = IngestBatch()
        batch.records.reserveCapacity(messages.count)
        for message in messages {
            let source = SourcePosition(topic: message.topic, partition: message.partition, offset: message.offset)
            guard let kind = configuration.kind(ofTopic: message.topic) else { continue }
            switch validator.validate(kind: kind, key: message.key, value: message.value) {
            case .success(let record):
                batch.records.append(IncomingRecord(record: record, source: source, key: message.key, value: message.value))
            case .failure(let rejection):
                batch.rejects.append(RejectedMessage(source: source, key: message.key, value: message.value, rejection: rejection))
            }
        }
        batch.progress = progress
        return batch
    }

    private func start(_ lane: WriteLane, messages: [KafkaMessage], progress: [PartitionProgress], next: [KafkaTopicPartition: Int64]) {
        guard let store = lane.store else {
            // Not written: its partitions must restart from what PostgreSQL holds.
            table.needsRewind = true
            return
        }
        let flight = WriteLane.InFlight(next: next, consumed: messages.count)
        let deadLetters = lane.deadLetters
        let configuration = self.configuration
        let validator = self.validator
        let job = UnsafeTransfer((store, deadLetters))
        flight.done.enter()
        lane.flights.append(flight)
        lane.queue.async {
            let (store, deadLetters) = job.value
            let validationStart = DispatchTime.now()
            let batch = IngestWorker.prepare(messages, progress: progress, validator: validator, configuration: configuration)
            flight.validateNanoseconds = DispatchTime.now().uptimeNanoseconds - validationStart.uptimeNanoseconds
            flight.result = Result {
                try store.commit(batch) { rejects in
                    guard !rejects.isEmpty else { return }
                    let now = Timestamp(microseconds: Int64(Date().timeIntervalSince1970 * 1_000_000)).rfc3339
                    try deadLetters.send(rejects.map { DeadLetter.message(for: $0, topic: configuration.deadLetterTopic, rejectedAt: now, maxRecordBytes: configuration.deadLetterMaxRecordBytes) })
                }
            }
            flight.done.leave()
        }
    }

    /// Waits for the lane's oldest batch and books its result; rethrows its failure.
    private func finishOldest(_ lane: WriteLane) throws {
        guard let flight = lane.flights.first else { return }
        let waitStarted = DispatchTime.now()
        flight.done.wait()
        summary.waitSeconds += Double(DispatchTime.now().uptimeNanoseconds - waitStarted.uptimeNanoseconds) / 1e9
        lane.flights.removeFirst()
        let nanos = DispatchTime.now().uptimeNanoseconds - flight.started.uptimeNanoseconds
        summary.validateSeconds += Double(flight.validateNanoseconds) / 1e9
        switch flight.result {
        case .success(let outcome):
            for (tp, offset) in flight.next where table.stored[tp] != nil { table.stored[tp] = .some(offset) }
            summary.writeSeconds += Double(nanos) / 1e9
            batchLatency.recordNanoseconds(Int64(nanos))
            record(outcome, consumed: flight.consumed)
            if let firstMessageAt {
                summary.activeSeconds = Double(DispatchTime.now().uptimeNanoseconds - firstMessageAt.uptimeNanoseconds) / 1e9
            }
        case .failure(let error):
            if lane.store?.connection.isHealthy == false { lane.store = nil }
            throw error
        }
    }

    private func finishLanes() throws {
        var firstError: (any Error)?
        for lane in lanes {
            while !lane.flights.isEmpty {
                do { try finishOldest(lane) } catch { firstError = firstError ?? error }
            }
        }
        if let firstError { throw firstError }
    }

    /// Waits for every lane. A failed batch means positions ran ahead of what is stored, so
    /// every partition restarts from PostgreSQL before anything else is written.
    private func drainLanes() {
        for lane in lanes {
            while !lane.flights.isEmpty {
                do { try finishOldest(lane) } catch { table.needsRewind = true }
            }
        }
    }

    private func record(_ outcome: IngestOutcome, consumed: Int) {
        summary.consumed += consumed
        summary.batches += 1
        consumedCounter.increment(by: consumed)
        batchSize.record(consumed)
        for (table, count) in outcome.stored {
            summary.stored[table, default: 0] += count
            Counter(label: "bte_ingest_events_stored_total", dimensions: [("log", table.rawValue)], factory: metrics).increment(by: count)
        }
        for (table, count) in outcome.duplicates where count > 0 {
            summary.duplicates[table, default: 0] += count
            Counter(label: "bte_ingest_duplicates_total", dimensions: [("log", table.rawValue)], factory: metrics).increment(by: count)
        }
        for reject in outcome.rejects {
            summary.rejected[reject.rejection.code, default: 0] += 1
            Counter(label: "bte_ingest_rejected_total", dimensions: [("code", reject.rejection.code.rawValue)], factory: metrics).increment()
            logger.debug("rejected", metadata: ["source": "\(reject.source)", "code": "\(reject.rejection.code.rawValue)"])
        }
    }

    private func reportLag(_ consumer: KafkaConsumer) {
        for (tp, position) in table.position {
            guard let high = consumer.cachedWatermarks(tp)?.high else { continue }
            Gauge(label: "bte_ingest_lag_messages", dimensions: [("topic", tp.topic), ("partition", String(tp.partition))], factory: metrics)
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

/// Moves values into a closure run on one other thread while the sender doesn't touch them.
struct UnsafeTransfer<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

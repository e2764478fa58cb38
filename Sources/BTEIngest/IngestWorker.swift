import BTEDomain
import BTEStore
import BTEWorker
import Dispatch
import Foundation
import Kafka
import Logging
import Metrics
import Postgres
import Synchronization

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
    private let box = LedgerBox()
    private var lanes: [WriteLane] = []
    private var laneIndex: [KafkaTopicPartition: Int] = [:]
    private var summary = IngestSummary()
    private var firstMessageAt: DispatchTime?
    private var stop = StopSignal()
    /// Spans are made only with a tracer bootstrapped (`--otlp-endpoint`); headers are read then only.
    private var exportsSpans = false

    private let metrics: any MetricsFactory
    private let consumedCounter: Counter
    private let batchSize: Recorder
    private let batchLatency: Metrics.Timer
    private let retryCounter: Counter

    /// Metrics go to `metrics` (the process-wide factory unless a test passes its own).
    public init(configuration: IngestConfiguration, logger: Logger, metrics: any MetricsFactory = MetricsSystem.factory)
    {
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
        self.stop = stop
        let topics = InputKind.allCases.map(configuration.topic)
        var consumerConfig = KafkaConsumerConfiguration(
            client: KafkaClientConfiguration(brokers: configuration.brokers, properties: configuration.kafkaProperties),
            groupID: configuration.group)
        consumerConfig.sessionTimeoutMilliseconds = configuration.sessionTimeoutMilliseconds
        consumerConfig.groupInstanceID = configuration.instanceID
        consumerConfig.queuedMaxKilobytes = configuration.prefetchKilobytes
        consumerConfig.fetchWaitMaxMilliseconds = configuration.fetchWaitMilliseconds
        consumerConfig.fetchMaxBytes = max(configuration.prefetchKilobytes * 1024 / 4, 1_048_576)
        exportsSpans = BatchTrace.exporting
        if exportsSpans { consumerConfig.copiedHeaders = [TraceParent.headerName] }
        var producerConfig = KafkaProducerConfiguration(
            client: KafkaClientConfiguration(brokers: configuration.brokers, properties: configuration.kafkaProperties))
        producerConfig.lingerMilliseconds = 1
        lanes = try (0..<max(configuration.writers, 1)).map {
            WriteLane(index: $0, deadLetters: try KafkaProducer(configuration: producerConfig))
        }

        let box = self.box
        let logger = self.logger
        let consumer = try KafkaConsumer(
            configuration: consumerConfig,
            rebalance: box.rebalanceHandler(
                logger: logger,
                stored: { topics in
                    guard let store = box.control else { throw PostgresError(.connection, message: "not connected") }
                    return try store.storedOffsets(topics: topics)
                },
                beforeRevoke: { box.drain?() }))
        // Bounded: with the broker away, leaving the group can't hold up the exit.
        defer { consumer.close(timeoutMilliseconds: configuration.shutdownGraceMilliseconds) }
        box.drain = { [unowned self] in self.drainLanes() }
        defer { box.drain = nil }
        configuration.readiness?.register("ingest")
        defer { configuration.readiness?.set("ingest", ready: false) }
        box.control = try connectWithRetry(stop: stop)
        for lane in lanes { lane.store = try connectWithRetry(stop: stop) }
        try consumer.subscribe(topics: topics)
        logger.info(
            "ingest started",
            metadata: ["group": "\(configuration.group)", "topics": "\(topics)", "writers": "\(lanes.count)"])
        configuration.readiness?.set("ingest", ready: true)

        var backoff = configuration.retryInitialMilliseconds
        while !stop.isSet {
            do {
                if box.ledger.needsRewind {
                    try rewind(consumer)
                    backoff = configuration.retryInitialMilliseconds
                    configuration.readiness?.set("ingest", ready: true)
                }
                let pollStarted = DispatchTime.now()
                let messages = try collectBatch(consumer, stop: stop)
                if firstMessageAt != nil {
                    summary.pollSeconds +=
                        Double(DispatchTime.now().uptimeNanoseconds - pollStarted.uptimeNanoseconds) / 1e9
                }
                if messages.isEmpty {
                    if lanes.contains(where: { !$0.flights.isEmpty }) {
                        try finishLanes()
                        reportLag(consumer)
                        continue
                    }
                    if configuration.untilIdle, box.ledger.caughtUp(high: consumer.cachedWatermarks) { break }
                    continue
                }
                if firstMessageAt == nil { firstMessageAt = DispatchTime.now() }
                try dispatch(messages)
                backoff = configuration.retryInitialMilliseconds
            } catch {
                if stop.isSet { break }
                try pause(consumer, after: error, backoff: &backoff, stop: stop)
            }
        }
        // Finish what is in flight, or give up on it after the grace period (PostgreSQL or the
        // broker away): an unfinished transaction never commits, so its messages are read again.
        finishLanes(until: DispatchTime.now() + .milliseconds(configuration.shutdownGraceMilliseconds))
        logger.info(
            "ingest stopping", metadata: ["consumed": "\(summary.consumed)", "stored": "\(summary.totalStored)"])
        return summary
    }

    /// Restarts every assigned partition from what PostgreSQL holds, dropping anything
    /// fetched but not written.
    private func rewind(_ consumer: KafkaConsumer) throws {
        drainLanes()
        if box.control == nil || box.control?.isHealthy == false {
            box.control = try IngestStore(url: configuration.databaseURL, group: configuration.group)
        }
        for lane in lanes where lane.store == nil || lane.store?.isHealthy == false {
            lane.store = try IngestStore(url: configuration.databaseURL, group: configuration.group)
        }
        guard let control = box.control else { return }
        let targets = box.ledger.rewindTargets()
        let offsets = box.started(targets, stored: try control.storedOffsets(topics: Array(Set(targets.map(\.topic)))))
        if !offsets.isEmpty { try consumer.assign(offsets) }
        logger.info("resumed from stored offsets", metadata: ["partitions": "\(targets.count)"])
    }

    /// Classifies a failure: data can't cause it (rejects are handled per message), so it is
    /// infrastructure. Retriable ones pause consumption and back off; others end the run.
    private func pause(_ consumer: KafkaConsumer, after error: any Error, backoff: inout Int, stop: StopSignal) throws {
        drainLanes()
        guard isRetriable(error) else { throw error }
        summary.retries += 1
        retryCounter.increment()
        configuration.readiness?.set("ingest", ready: false)
        box.holdOff(consumer, after: error, backoff: &backoff, configuration: configuration, stop: stop, logger: logger)
    }

    private func connectWithRetry(stop: StopSignal) throws -> IngestStore? {
        try connectRetrying(configuration: configuration, stop: stop, logger: logger) {
            try IngestStore(url: configuration.databaseURL, group: configuration.group)
        }
    }

    private func collectBatch(_ consumer: KafkaConsumer, stop: StopSignal) throws -> [KafkaMessage] {
        try box.collectBatch(
            consumer, configuration: configuration, linger: configuration.lingerMilliseconds, stop: stop)
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
    /// the lane's queue is full. The lane validates and writes on its own queue; the ledger fixes
    /// each batch's fence expectations.
    private func dispatch(_ messages: [KafkaMessage]) throws {
        var byLane: [Int: [KafkaMessage]] = [:]
        for message in messages { byLane[lane(of: message.topicPartition).index, default: []].append(message) }
        for (index, part) in byLane.sorted(by: { $0.key < $1.key }) {
            let lane = lanes[index]
            while lane.flights.count >= max(configuration.batchesQueuedPerWriter, 1) { try finishOldest(lane) }
            guard lane.store != nil else {
                // Not written: its partitions must restart from what PostgreSQL holds.
                box.ledger.requireRewind()
                return
            }
            let (id, progress) = box.ledger.dispatch(part, lane: index)
            start(lane, id: id, messages: part, progress: progress)
        }
    }

    /// Validates messages into a batch. Pure apart from reading the configuration.
    static func prepare(
        _ messages: [KafkaMessage], progress: [PartitionProgress], validator: RecordValidator,
        configuration: IngestConfiguration
    ) -> IngestBatch {
        var batch = IngestBatch()
        batch.records.reserveCapacity(messages.count)
        for message in messages {
            let source = SourcePosition(topic: message.topic, partition: message.partition, offset: message.offset)
            guard let kind = configuration.kind(ofTopic: message.topic) else { continue }
            switch validator.validate(kind: kind, key: message.key, value: message.value) {
            case .success(let record):
                batch.records.append(
                    IncomingRecord(record: record, source: source, key: message.key, value: message.value))
            case .failure(let rejection):
                batch.rejects.append(
                    RejectedMessage(source: source, key: message.key, value: message.value, rejection: rejection))
            }
        }
        batch.progress = progress
        return batch
    }

    private func start(_ lane: WriteLane, id: Int, messages: [KafkaMessage], progress: [PartitionProgress]) {
        guard let store = lane.store else { return }
        var byTopic: [String: Int] = [:]
        for message in messages { byTopic[message.topic, default: 0] += 1 }
        let trace = exportsSpans ? BatchTrace(worker: "ingest", messages: messages, traceContext: true) : nil
        let flight = WriteLane.InFlight(id: id, consumed: messages.count, consumedByTopic: byTopic, trace: trace)
        let deadLetters = lane.deadLetters
        let configuration = self.configuration
        let validator = self.validator
        let job = UnsafeTransfer((store, deadLetters))
        flight.done.enter()
        lane.flights.append(flight)
        lane.queue.async {
            let (store, deadLetters) = job.value
            let validationStart = DispatchTime.now()
            flight.queuedNanoseconds = validationStart.uptimeNanoseconds - flight.started.uptimeNanoseconds
            let batch = IngestWorker.prepare(
                messages, progress: progress, validator: validator, configuration: configuration)
            let commitStart = DispatchTime.now()
            flight.validateNanoseconds = commitStart.uptimeNanoseconds - validationStart.uptimeNanoseconds
            flight.result = Result {
                try store.commit(batch) { rejects in
                    guard !rejects.isEmpty else { return }
                    let now = Timestamp(microseconds: Int64(Date().timeIntervalSince1970 * 1_000_000)).rfc3339
                    try deadLetters.send(
                        rejects.map {
                            DeadLetter.message(
                                for: $0, topic: configuration.deadLetterTopic, rejectedAt: now,
                                maxRecordBytes: configuration.deadLetterMaxRecordBytes)
                        })
                }
            }
            flight.commitNanoseconds = DispatchTime.now().uptimeNanoseconds - commitStart.uptimeNanoseconds
            flight.done.leave()
        }
    }

    /// Waits for the lane's oldest batch and books its result; rethrows its failure.
    private func finishOldest(_ lane: WriteLane) throws {
        guard let flight = lane.flights.first else { return }
        let waitStarted = DispatchTime.now()
        // In slices, so a stop request is seen while a writer waits on an absent server.
        while flight.done.wait(timeout: .now() + .milliseconds(100)) == .timedOut {
            if stop.isSet { throw Stopping() }
        }
        summary.waitSeconds += Double(DispatchTime.now().uptimeNanoseconds - waitStarted.uptimeNanoseconds) / 1e9
        lane.flights.removeFirst()
        let nanos = DispatchTime.now().uptimeNanoseconds - flight.started.uptimeNanoseconds
        summary.validateSeconds += Double(flight.validateNanoseconds) / 1e9
        switch flight.result {
        case .success(let outcome):
            flight.trace?.finish(
                laps: [
                    ("queued", Int64(flight.queuedNanoseconds)), ("validate", Int64(flight.validateNanoseconds)),
                    ("commit", Int64(flight.commitNanoseconds)),
                ], messages: flight.consumed)
            box.ledger.finished(flight.id, succeeded: true)
            summary.writeSeconds += Double(nanos) / 1e9
            batchLatency.recordNanoseconds(Int64(nanos))
            record(outcome, consumed: flight.consumed, byTopic: flight.consumedByTopic)
            if let firstMessageAt {
                summary.activeSeconds =
                    Double(DispatchTime.now().uptimeNanoseconds - firstMessageAt.uptimeNanoseconds) / 1e9
            }
        case .failure(let error):
            box.ledger.finished(flight.id, succeeded: false)
            if lane.store?.isHealthy == false { lane.store = nil }
            throw error
        }
    }

    private func finishLanes() throws {
        var firstError: (any Error)?
        for lane in lanes {
            while !lane.flights.isEmpty {
                do { try finishOldest(lane) } catch let error as Stopping { throw error } catch {
                    firstError = firstError ?? error
                }
            }
        }
        if let firstError { throw firstError }
    }

    /// At shutdown: books what finishes by `deadline` and leaves the rest unbooked.
    private func finishLanes(until deadline: DispatchTime) {
        for lane in lanes {
            while let flight = lane.flights.first {
                guard flight.done.wait(timeout: deadline) == .success else {
                    logger.warning(
                        "in-flight batch abandoned at shutdown; it will be read again",
                        metadata: ["lane": "\(lane.index)"])
                    break
                }
                do { try finishOldest(lane) } catch {
                    logger.warning("last batch not written; it will be read again", metadata: ["error": "\(error)"])
                    break
                }
            }
        }
    }

    /// Waits for every lane. A failed batch means positions ran ahead of what is stored, so
    /// every partition restarts from PostgreSQL before anything else is written.
    private func drainLanes() {
        for lane in lanes {
            while !lane.flights.isEmpty {
                // A failure has already set the ledger to rewind.
                do { try finishOldest(lane) } catch is Stopping { return } catch {}
            }
        }
    }

    private func record(_ outcome: IngestOutcome, consumed: Int, byTopic: [String: Int]) {
        summary.consumed += consumed
        summary.batches += 1
        consumedCounter.increment(by: consumed)
        // Per topic, beside the totals: the reject ratio of each input (alerts.yml).
        for (topic, count) in byTopic {
            Counter(label: "bte_ingest_topic_messages_total", dimensions: [("topic", topic)], factory: metrics)
                .increment(by: count)
        }
        var rejectedByTopic: [String: Int] = [:]
        for reject in outcome.rejects { rejectedByTopic[reject.source.topic, default: 0] += 1 }
        for (topic, count) in rejectedByTopic {
            Counter(label: "bte_ingest_topic_rejected_total", dimensions: [("topic", topic)], factory: metrics)
                .increment(by: count)
        }
        batchSize.record(consumed)
        for (table, count) in outcome.stored {
            summary.stored[table, default: 0] += count
            Counter(label: "bte_ingest_events_stored_total", dimensions: [("log", table.rawValue)], factory: metrics)
                .increment(by: count)
        }
        for (table, count) in outcome.duplicates where count > 0 {
            summary.duplicates[table, default: 0] += count
            Counter(label: "bte_ingest_duplicates_total", dimensions: [("log", table.rawValue)], factory: metrics)
                .increment(by: count)
        }
        for (table, count) in outcome.suppressed where count > 0 {
            summary.suppressed[table, default: 0] += count
            Counter(label: "bte_ingest_suppressed_total", dimensions: [("log", table.rawValue)], factory: metrics)
                .increment(by: count)
        }
        for reject in outcome.rejects {
            summary.rejected[reject.rejection.code, default: 0] += 1
            Counter(
                label: "bte_ingest_rejected_total", dimensions: [("code", reject.rejection.code.rawValue)],
                factory: metrics
            ).increment()
            logger.debug(
                "rejected", metadata: ["source": "\(reject.source)", "code": "\(reject.rejection.code.rawValue)"])
        }
    }

    private func reportLag(_ consumer: KafkaConsumer) {
        for (tp, partition) in box.ledger.partitions {
            guard let position = partition.position ?? partition.stored, let high = consumer.cachedWatermarks(tp)?.high
            else { continue }
            Gauge(
                label: "bte_ingest_lag_messages",
                dimensions: [("topic", tp.topic), ("partition", String(tp.partition))], factory: metrics
            )
            .record(max(high - position, 0))
        }
    }
}

/// A wait given up because the worker is asked to stop.
struct Stopping: Error {}

/// Moves values into a closure run on one other thread while the sender doesn't touch them.
struct UnsafeTransfer<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

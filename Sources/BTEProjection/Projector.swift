import BTECompute
import BTEDomain
import BTEStore
import BTEWorker
import Dispatch
import Foundation
import Kafka
import Logging
import Metrics
import Postgres

/// `bte project`: consumer group `bte-projector` over the business and interaction topics. It
/// waits until ingest has made a batch durable, reads the rows the batch stored (read-only),
/// applies them in log order to each workspace's and user's in-memory state (`ProjectionState`),
/// publishes the outputs as of every event, and commits the group's offsets only once every
/// output is acknowledged.
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
        /// How long a batch keeps taking messages that are already fetched before it closes
        /// (see `collect`).
        public var lingerMilliseconds = 5
        /// The consumer's `fetch.wait.max.ms` (see `IngestConfiguration.fetchWaitMilliseconds`).
        public var fetchWaitMilliseconds = 20
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
        /// Called after each batch is committed with its stages' nanoseconds in order and its
        /// message count (benchmarks: the slowest batches by stage).
        public var onBatch: (@Sendable (_ laps: [(String, Int64)], _ messages: Int) -> Void)?
        public var metrics: any MetricsFactory = MetricsSystem.factory
        /// Where the projector reports whether it can project now (for `/readyz`), as `project`.
        public var readiness: Readiness?
        /// How many workspaces and users the in-memory state holds before the least recently
        /// used are dropped (and rebuilt from the logs when next touched).
        /// Benchmarks only: wait until ingest stored each batch and commit, computing and
        /// publishing nothing (the pipeline's floor).
        public var publishNothing = false
        public var maxStateWorkspaces = 10_000
        public var maxStateUsers = 200_000
        /// Carry a producer's W3C `traceparent` header from each input message to the records it
        /// causes (as a child context). Off: headers are not even read.
        public var traceContext = false
        var stateLimits: ProjectionState.Limits {
            ProjectionState.Limits(workspaces: maxStateWorkspaces, users: maxStateUsers)
        }

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
        /// Seconds spent per stage of the batches (durable, peers, rows, load, consent, compute, encode,
        /// publish, commit).
        public var stageSeconds: [String: Double] = [:]
    }

    private let configuration: Configuration
    private let logger: Logger
    private var summary = Summary()
    private var position: [KafkaTopicPartition: Int64] = [:]
    private var firstMessageAt: DispatchTime?
    private let state: ProjectionState

    private let batchesCounter: Counter
    private let consumedCounter: Counter
    private let batchDuration: Metrics.Timer
    private let freshness: Metrics.Timer

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.state = ProjectionState(limits: configuration.stateLimits, metrics: configuration.metrics)
        let factory = configuration.metrics
        batchesCounter = Counter(label: "bte_projector_batches_total", factory: factory)
        consumedCounter = Counter(label: "bte_projector_messages_consumed_total", factory: factory)
        batchDuration = Metrics.Timer(label: "bte_projector_batch_duration_seconds", factory: factory)
        freshness = Metrics.Timer(label: "bte_projector_freshness_seconds", factory: factory)
    }

    var businessTopic: String { InputKind.business.name(prefix: configuration.topicPrefix) }
    var interactionTopic: String { InputKind.interaction.name(prefix: configuration.topicPrefix) }

    public func run(stop: StopSignal) throws -> Summary {
        var consumerConfiguration = KafkaConsumerConfiguration(
            client: KafkaClientConfiguration(brokers: configuration.brokers, properties: configuration.kafkaProperties),
            groupID: configuration.group)
        consumerConfiguration.sessionTimeoutMilliseconds = configuration.sessionTimeoutMilliseconds
        consumerConfiguration.fetchWaitMaxMilliseconds = configuration.fetchWaitMilliseconds
        consumerConfiguration.groupInstanceID = configuration.instanceID
        if configuration.traceContext { consumerConfiguration.copiedHeaders = [TraceParent.headerName] }
        let assigned = AssignedPartitions()
        let logger = self.logger
        let consumer = try KafkaConsumer(
            configuration: consumerConfiguration,
            rebalance: KafkaRebalanceHandler(
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
        var producerConfiguration = KafkaProducerConfiguration(
            client: KafkaClientConfiguration(brokers: configuration.brokers, properties: configuration.kafkaProperties))
        // A batch's outputs are sent together and waited for: lingering only delays them.
        producerConfiguration.lingerMilliseconds = 1
        let producer = try KafkaProducer(configuration: producerConfiguration)
        let readerURL = configuration.readerURL
        let group = configuration.group
        func openReader() throws -> HistoryReader {
            let opened = try HistoryReader(url: readerURL)
            try opened.holdGroupLock(group)
            try opened.listenForIngestCommits()
            return opened
        }
        // The group's lock before the group: a replay of the group that is under way finishes
        // before this member reads its offsets. (Unreachable now, it is opened with the batch.)
        var reader = try? openReader()
        try consumer.subscribe(topics: [businessTopic, interactionTopic])
        configuration.readiness?.register("project")
        configuration.readiness?.set("project", ready: true)
        defer { configuration.readiness?.set("project", ready: false) }

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
                if state.generation != assigned.generation, !assigned.partitions.isEmpty,
                    !configuration.publishNothing
                {
                    if reader == nil || reader?.isHealthy == false { reader = try openReader() }
                    if let current = reader { try warm(consumer, reader: current, assigned: assigned) }
                }
                messages = try collect(consumer, stop: stop, assigned: assigned)
            } catch {
                guard isRetriable(error) else { throw error }
                configuration.readiness?.set("project", ready: false)
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
                    if reader == nil || reader?.isHealthy == false { reader = try openReader() }
                    guard let current = reader else { continue }
                    // Commits notified before the durability check are seen by it.
                    try current.clearIngestCommits()
                    try project(
                        messages, reader: current, producer: producer, consumer: consumer, stop: stop,
                        generation: assigned.generation)
                    configuration.readiness?.set("project", ready: true)
                    backoff = 250
                    break
                } catch let error as StoreError where error.code == .notDurable {
                    waited += 1
                    // Normal for a moment; worth saying when it lasts (is ingest running?).
                    if waited % 100 == 0 {
                        logger.info("waiting for ingest to store the batch", metadata: ["detail": "\(error.message)"])
                    }
                    // Ingest notifies each commit: wake then, or after 100 ms at the latest.
                    _ = try? reader?.awaitIngestCommit(timeoutMilliseconds: 100)
                    // Serve the group about once a second (well within max.poll.interval.ms), not
                    // on every wake: a poll may fetch past the batch, which then is read again.
                    if waited % 10 != 0 { continue }
                    wait = 1
                } catch {
                    // Data can't be fixed by retrying: stop with the error rather than loop on it.
                    guard isRetriable(error) else { throw error }
                    summary.retries += 1
                    configuration.readiness?.set("project", ready: false)
                    logger.warning(
                        "projection failed; retrying the batch",
                        metadata: ["error": "\(error)", "retry_in_ms": "\(backoff)"])
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

    /// Rebuilds the state of the assigned partitions' workspaces from the rows stored before
    /// the group's committed offsets, before the first batch after an assignment.
    private func warm(_ consumer: KafkaConsumer, reader: HistoryReader, assigned: AssignedPartitions) throws {
        let generation = assigned.generation
        let business = assigned.partitions.filter { $0.topic == businessTopic }.sorted()
        let committed = business.isEmpty ? [:] : try consumer.committed(business, timeoutMilliseconds: 10_000)
        var from: [Int32: Int64] = [:]
        for tp in business { from[tp.partition] = committed[tp] ?? 0 }
        let started = DispatchTime.now().uptimeNanoseconds
        let built = try reader.snapshot {
            try state.warm(
                reader: reader, businessTopic: businessTopic, ingestGroup: configuration.ingestGroup, committed: from,
                thresholds: try reader.thresholds()
            ) { built, total in
                logger.info("rebuilding projector state from the logs", metadata: ["workspaces": "\(built)/\(total)"])
            }
        }
        state.generation = generation
        logger.info(
            "projector state built",
            metadata: [
                "workspaces": "\(built)",
                "ms": "\((DispatchTime.now().uptimeNanoseconds - started) / 1_000_000)",
            ])
    }

    /// Polls with the assigned partitions paused for `milliseconds`. Returns whether the batch in
    /// hand is stale: a rebalance happened or a message was fetched meanwhile.
    private func keepAlive(_ consumer: KafkaConsumer, assigned: AssignedPartitions, milliseconds: Int, stop: StopSignal)
        -> Bool
    {
        let generation = assigned.generation
        let partitions = assigned.partitions.sorted()
        if !partitions.isEmpty { try? consumer.pause(partitions) }
        var stale = false
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(max(milliseconds, 1)) * 1_000_000
        // At least one poll, however short the wait: that is what keeps the member alive.
        repeat {
            let left = Int32((deadline - min(DispatchTime.now().uptimeNanoseconds, deadline)) / 1_000_000)
            if (try? consumer.poll(timeoutMilliseconds: max(min(50, left), 0))) ?? nil != nil { stale = true }
        } while DispatchTime.now().uptimeNanoseconds < deadline && !stop.isSet
        stale = stale || assigned.generation != generation
        if !stale, !partitions.isEmpty { try? consumer.resume(partitions) }
        return stale
    }

    private func restartFromCommitted(_ consumer: KafkaConsumer, assigned: AssignedPartitions) throws {
        let partitions = assigned.partitions.sorted()
        for tp in partitions { position[tp] = nil }
        if !partitions.isEmpty {
            try consumer.assign(partitions.map { KafkaTopicPartitionOffset($0, offset: .committed) })
        }
    }

    /// A batch: up to `maxBatchMessages`, collected in at most `maxBatchWaitMilliseconds`. Once
    /// `lingerMilliseconds` have passed since the first, the batch closes as soon as nothing
    /// fetched is waiting, so a steady trickle is projected promptly while a backlog still fills
    /// whole batches.
    private func collect(_ consumer: KafkaConsumer, stop: StopSignal, assigned: AssignedPartitions) throws
        -> [KafkaMessage]
    {
        var messages: [KafkaMessage] = []
        let started = DispatchTime.now().uptimeNanoseconds
        let deadline = started + UInt64(configuration.maxBatchWaitMilliseconds) * 1_000_000
        var lingerEnds = UInt64.max
        while messages.count < configuration.maxBatchMessages, !stop.isSet {
            let now = DispatchTime.now().uptimeNanoseconds
            if now >= deadline { break }
            let timeout: Int32 = messages.isEmpty ? 100 : (now >= lingerEnds ? 0 : 10)
            guard let message = try consumer.poll(timeoutMilliseconds: timeout) else {
                if !messages.isEmpty { break }
                continue
            }
            position[message.topicPartition] = message.offset + 1
            if firstMessageAt == nil { firstMessageAt = DispatchTime.now() }
            if messages.isEmpty {
                lingerEnds = DispatchTime.now().uptimeNanoseconds + UInt64(configuration.lingerMilliseconds) * 1_000_000
            }
            messages.append(message)
        }
        return messages
    }

    /// One batch: durable? → the rows it stored → each entity's outputs as of each event →
    /// published → offsets committed. A failure anywhere drops the in-memory state: the batch is
    /// read again from the committed offsets and its entities rebuilt from the logs.
    private func project(
        _ messages: [KafkaMessage], reader: HistoryReader, producer: KafkaProducer, consumer: KafkaConsumer,
        stop: StopSignal, generation: Int
    ) throws {
        let started = DispatchTime.now().uptimeNanoseconds
        var next: [KafkaTopicPartition: Int64] = [:]
        var first: [KafkaTopicPartition: Int64] = [:]
        for message in messages {
            next[message.topicPartition] = max(next[message.topicPartition] ?? 0, message.offset + 1)
            first[message.topicPartition] = min(first[message.topicPartition] ?? message.offset, message.offset)
        }
        let ranges = next.keys.sorted().map { tp in
            OffsetRange(topic: tp.topic, partition: tp.partition, from: first[tp] ?? 0, to: next[tp] ?? 0)
        }
        let trace = BatchTrace(worker: "project", messages: messages, traceContext: configuration.traceContext)
        try reader.waitUntilDurable(
            group: configuration.ingestGroup, next: next.map { ($0.key.topic, $0.key.partition, $0.value) })
        var clock = StageClock(started: started)
        clock.lap("durable")
        if configuration.publishNothing {
            try consumer.commit(next)
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            configuration.onPublished?(messages.compactMap { $0.timestampMilliseconds.map { now - $0 } })
            summary.consumed += messages.count
            return
        }
        if state.generation != generation {
            state.reset()
            state.generation = generation
        }
        var succeeded = false
        defer { if !succeeded { state.reset() } }
        let failures = ComputationFailures(
            logger: logger, metrics: configuration.metrics,
            deadLetterTopic: OutputTopic.deadLetter.name(prefix: configuration.topicPrefix), source: businessTopic)
        // Erasures wait until what this batch computes is published (`holdErasures`).
        try reader.holdErasures()
        let outputs = try { () throws -> ProjectionOutputs in
            defer { reader.releaseErasures() }
            let outputs = try reader.snapshot {
                try state.project(
                    ranges: ranges, reader: reader, businessTopic: businessTopic,
                    ingestGroup: configuration.ingestGroup, thresholds: try reader.thresholds(),
                    topicPrefix: configuration.topicPrefix, failures: failures, traces: trace.contexts, clock: &clock)
            }
            let records = outputs.messages(prefix: configuration.topicPrefix)
            clock.lap("encode")
            try producer.send(records)
            return outputs
        }()
        clock.lap("publish")
        try consumer.commit(next)
        clock.lap("commit")
        succeeded = true
        trace.finish(laps: clock.laps, messages: messages.count)
        configuration.onBatch?(clock.laps, messages.count)
        for (stage, nanoseconds) in clock.laps {
            summary.stageSeconds[stage, default: 0] += Double(nanoseconds) / 1e9
            Metrics.Timer(
                label: "bte_projector_stage_seconds", dimensions: [("stage", stage)], factory: configuration.metrics
            )
            .recordNanoseconds(nanoseconds)
        }
        // Produce → outputs acknowledged, per input message.
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let ages = messages.compactMap { $0.timestampMilliseconds.map { now - $0 } }
        for age in ages { freshness.recordNanoseconds(max(age, 0) * 1_000_000) }
        configuration.onPublished?(ages)
        batchesCounter.increment()
        consumedCounter.increment(by: messages.count)
        batchDuration.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - started))
        for (topic, count) in outputs.countsByTopic() {
            Counter(
                label: "bte_projector_outputs_total", dimensions: [("topic", topic)], factory: configuration.metrics
            )
            .increment(by: count)
        }
        struct Decided: Hashable {
            let outcome: String
            let reason: String
        }
        let decided = Dictionary(grouping: outputs.deliveries) {
            Decided(outcome: $0.outcome.rawValue, reason: $0.reason)
        }
        for (key, decisions) in decided {
            Counter(
                label: "bte_insight_deliveries_total", dimensions: [("outcome", key.outcome), ("reason", key.reason)],
                factory: configuration.metrics
            ).increment(by: decisions.count)
        }
        for (tp, position) in next {
            guard let marks = consumer.cachedWatermarks(tp) else { continue }
            Gauge(
                label: "bte_projector_lag_messages",
                dimensions: [("topic", tp.topic), ("partition", String(tp.partition))], factory: configuration.metrics
            ).record(max(marks.high - position, 0))
        }
        summary.consumed += messages.count
        summary.batches += 1
        if let firstMessageAt {
            summary.activeSeconds =
                Double(DispatchTime.now().uptimeNanoseconds - firstMessageAt.uptimeNanoseconds) / 1e9
        }
        summary.workspaces += Set(outputs.signals.map(\.workspaceID)).count
        summary.signals += outputs.signals.count
        summary.users += Set(outputs.vectors.map { $0.key ?? [] }).count
        summary.vectors += outputs.vectors.count
        summary.insights += outputs.insights.count
    }

    /// Every assigned partition read up to its high watermark. A partition this member has read
    /// nothing from yet is where the group committed (a partition with nothing new is caught up,
    /// not behind by its whole history).
    private func caughtUp(_ consumer: KafkaConsumer, assigned: Set<KafkaTopicPartition>) -> Bool {
        guard !assigned.isEmpty else { return false }
        let unknown = assigned.filter { position[$0] == nil }.sorted()
        if !unknown.isEmpty, let committed = try? consumer.committed(unknown, timeoutMilliseconds: 5_000) {
            for tp in unknown { if let offset = committed[tp] { position[tp] = offset } }
        }
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

/// Durations of a batch's stages, in order.
struct StageClock {
    private var last: UInt64
    private(set) var laps: [(String, Int64)] = []

    init(started: UInt64) { last = started }

    mutating func lap(_ stage: String) {
        let now = DispatchTime.now().uptimeNanoseconds
        laps.append((stage, Int64(now - last)))
        last = now
    }
}

import BTEDomain
import BTEFixtures
import BTEIngest
import BTEProjection
import BTEStore
import BTEWorker
import Dispatch
import Foundation
import Kafka
import Logging
import Postgres

/// Projection figures in one run: projector throughput while ingest runs at full speed,
/// produce → signal freshness at a steady rate, and a sweep over a large stored history.
public struct ProjectorBenchmark: Sendable {
    public var brokers: String
    public var adminURL: String
    public var logger: Logger
    /// Events for the throughput run.
    public var events = 100_000
    /// Steady rate and duration of the freshness run.
    public var rate = 5_000
    public var seconds = 20
    /// Stored business events for the sweep.
    public var sweepEvents = 1_000_000
    /// Business events stored before the freshness stream (freshness suite), over `workspaces`.
    public var history = 0
    public var workspaces = 50
    public var interactionShare = 0.5

    public init(brokers: String, adminURL: String, logger: Logger) {
        self.brokers = brokers
        self.adminURL = adminURL
        self.logger = logger
    }

    public struct Result: Sendable {
        public var ingestRate = 0.0
        public var projectorRate = 0.0
        public var floor: Freshness?
        public var fresh: Freshness?
        public var withHistory: Freshness?
        /// The run without history again, after the one with it: how far the machine drifted.
        public var freshAgain: Freshness?
        public var history = 0
        public var interactionShare = 0.0
        public var sweepSeconds = 0.0
        public var sweepStored = 0
        public var sweepWorkspaces = 0
        public var analyzeSeconds = 0.0
        public var sweepBusiness = 0
        public var sweepStages: [(stage: String, milliseconds: Double)] = []

        public func render() -> String {
            var lines: [String] = []
            if projectorRate > 0 {
                lines.append(
                    """
                    projector throughput while ingest runs: \(Int(projectorRate.rounded())) input events/s \
                    (ingest \(Int(ingestRate.rounded())) events/s in the same run)
                    """)
            }
            let mix = "produce → outputs published, \(Int((interactionShare * 100).rounded()))% interactions"
            if let floor {
                lines.append(floor.render("pipeline floor (ingest + commit notification, nothing computed)"))
            }
            if let fresh { lines.append(fresh.render("freshness \(mix), no history")) }
            if let withHistory, let fresh {
                lines.append(withHistory.render("freshness \(mix), \(history) stored business events"))
                if let freshAgain {
                    lines.append(freshAgain.render("freshness \(mix), no history, again"))
                }
                var ratio = String(
                    format: "p99 with history ÷ without: %.2f; p50: %.2f",
                    withHistory.p99 / max(fresh.p99, 1), withHistory.p50 / max(fresh.p50, 1))
                if let freshAgain {
                    ratio += String(
                        format: " (÷ the run after it: p99 %.2f, p50 %.2f)",
                        withHistory.p99 / max(freshAgain.p99, 1), withHistory.p50 / max(freshAgain.p50, 1))
                }
                lines.append(ratio)
            }
            if let floor, let fresh {
                lines.append(String(format: "p99 ÷ pipeline floor p99: %.2f", fresh.p99 / max(floor.p99, 1)))
            }
            if sweepStored > 0 {
                lines.append(
                    """
                    sweep over \(sweepStored) stored events, \(sweepBusiness) of them business events and user actions \
                    (\(sweepWorkspaces) workspaces): \(String(format: "%.2f", sweepSeconds)) s \
                    (after ANALYZE, \(String(format: "%.1f", analyzeSeconds)) s)
                    """)
                lines.append(
                    "sweep stages (ms): "
                        + sweepStages.map { "\($0.stage) \(String(format: "%.0f", $0.milliseconds))" }
                        .joined(separator: ", "))
            }
            return lines.joined(separator: "\n")
        }
    }

    public func run(freshnessOnly: Bool = false, sweepOnly: Bool = false) throws -> Result {
        var result = Result()
        result.interactionShare = interactionShare
        if sweepOnly {
            try sweep(into: &result)
            return result
        }
        if freshnessOnly {
            result.floor = try freshness(history: 0, floor: true)
            result.fresh = try freshness(history: 0, floor: false)
            if history > 0 {
                result.withHistory = try freshness(history: history, floor: false)
                result.freshAgain = try freshness(history: 0, floor: false)
            }
            result.history = history
            return result
        }
        try throughput(into: &result)
        result.fresh = try freshness(history: 0, floor: false)
        try sweep(into: &result)
        return result
    }

    private func stream(_ events: Int, prefix: String, seed: UInt64, share: Double) -> DemoStream {
        var options = DemoStream.Options()
        options.events = events
        options.seed = seed
        options.badRounds = 0
        options.duplicateEvery = 0
        options.interactionShare = share
        options.topicPrefix = prefix
        return DemoStream(options: options)
    }

    private func setUp(_ label: String) throws -> (url: String, prefix: String, drop: () -> Void) {
        let name = "bte_bench_\(label)_\(UInt32.random(in: 0...UInt32.max))"
        let admin = try PostgresConnection(url: adminURL)
        try admin.execute("CREATE DATABASE \(name)")
        let url = with(adminURL, database: name)
        try Migrator().apply(url: url)
        let prefix = "\(label)\(UInt32.random(in: 0...UInt32.max))."
        _ = try KafkaAdmin(configuration: KafkaClientConfiguration(brokers: brokers)).createTopics(
            (InputKind.allCases.map(\.rawValue) + OutputTopic.allCases.map(\.rawValue)).map {
                KafkaNewTopic(name: prefix + $0, partitions: 6, replicationFactor: 1)
            })
        // BTE_BENCH_KEEP_DATABASES=1 keeps them, to look at plans afterwards.
        if ProcessInfo.processInfo.environment["BTE_BENCH_KEEP_DATABASES"] == "1" {
            print("database \(name)")
            return (url, prefix, {})
        }
        return (url, prefix, { _ = try? admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") })
    }

    private func ingestConfiguration(_ url: String, _ prefix: String, untilIdle: Bool) -> IngestConfiguration {
        var configuration = IngestConfiguration(brokers: brokers, databaseURL: with(url, user: "bte_ingest"))
        configuration.topicPrefix = prefix
        configuration.group = prefix + "ingest"
        configuration.untilIdle = untilIdle
        configuration.sessionTimeoutMilliseconds = 6_000
        return configuration
    }

    private func projectorConfiguration(_ url: String, _ prefix: String, untilIdle: Bool) -> Projector.Configuration {
        var configuration = Projector.Configuration(brokers: brokers, readerURL: with(url, user: "bte_reader"))
        configuration.topicPrefix = prefix
        configuration.group = prefix + "projector"
        configuration.ingestGroup = prefix + "ingest"
        configuration.untilIdle = untilIdle
        configuration.sessionTimeoutMilliseconds = 6_000
        return configuration
    }

    private func produce(_ messages: [KafkaOutgoingMessage]) throws {
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(client: KafkaClientConfiguration(brokers: brokers)))
        var index = 0
        while index < messages.count {
            let end = min(index + 20_000, messages.count)
            try producer.send(Array(messages[index..<end]))
            index = end
        }
    }

    /// Ingest and projector start together on a full topic; both run until idle.
    private func throughput(into result: inout Result) throws {
        let (url, prefix, drop) = try setUp("pthru")
        defer { drop() }
        try produce(stream(events, prefix: prefix, seed: 7, share: 0.5).messages)
        let ingest = ResultBox<IngestSummary>()
        let projector = ResultBox<Projector.Summary>()
        let group = DispatchGroup()
        let ingestConfiguration = self.ingestConfiguration(url, prefix, untilIdle: true)
        let projectorConfiguration = self.projectorConfiguration(url, prefix, untilIdle: true)
        let logger = self.logger
        group.enter()
        Thread {
            ingest.set(
                Swift.Result {
                    try IngestWorker(configuration: ingestConfiguration, logger: logger).run(stop: StopSignal())
                })
            group.leave()
        }.start()
        group.enter()
        Thread {
            projector.set(
                Swift.Result {
                    try Projector(configuration: projectorConfiguration, logger: logger).run(stop: StopSignal())
                })
            group.leave()
        }.start()
        group.wait()
        let ingestSummary = try ingest.get()
        let projectorSummary = try projector.get()
        result.ingestRate = Double(ingestSummary.consumed) / max(ingestSummary.activeSeconds, 1e-9)
        result.projectorRate = Double(projectorSummary.consumed) / max(projectorSummary.activeSeconds, 1e-9)
    }

    /// One freshness run's figures.
    public struct Freshness: Sendable {
        public var p50 = 0.0
        public var p95 = 0.0
        public var p99 = 0.0
        public var samples = 0
        public var achievedRate = 0.0
        /// Projector thread CPU per consumed event, microseconds.
        public var cpuMicrosPerEvent = 0.0
        /// The whole process's CPU per consumed event (ingest, projector, producer, span export).
        public var processCpuMicrosPerEvent = 0.0
        /// Mean milliseconds per batch in each stage.
        public var stageMilliseconds: [String: Double] = [:]
        public var batches = 0
        /// The slowest batches of the stream, one line each.
        public var slowest: [String] = []
        /// Records published per event consumed (signals, vectors, insights).
        public var recordsPerEvent = 0.0

        func render(_ label: String) -> String {
            let order = ["durable", "peers", "rows", "load", "consent", "compute", "encode", "publish", "commit"]
            let stages = order.compactMap { stage in
                stageMilliseconds[stage].map { "\(stage) " + String(format: "%.1f", $0) }
            }.joined(separator: ", ")
            return """
                \(label): p50 \(Int(p50)) ms, p95 \(Int(p95)) ms, p99 \(Int(p99)) ms \
                (\(samples) events at \(Int(achievedRate.rounded())) events/s; \
                \(String(format: "%.1f", recordsPerEvent)) records/event, \
                projector CPU \(String(format: "%.1f", cpuMicrosPerEvent)) µs/event, \
                process CPU \(String(format: "%.1f", processCpuMicrosPerEvent)) µs/event)
                  \(batches) batches, mean ms per batch: \(stages)
                """ + slowest.map { "\n  slowest: " + $0 }.joined()
        }
    }

    /// A producer at a steady rate while ingest and projector run; latency per event from its
    /// producer timestamp to the acknowledgement of the outputs it caused. With `history`, that
    /// many business events over the 29 days before the stream are stored first (the projector
    /// starts after them); with `floor`, the projector only waits for ingest and commits. With
    /// `sampledEvery` n, every message carries a `traceparent` header, every n-th one sampled,
    /// and the projector carries trace context (spans too, when a tracer is bootstrapped).
    func freshness(history: Int, floor: Bool, sampledEvery: Int? = nil) throws -> Freshness {
        let (url, prefix, drop) = try setUp(floor ? "pfloor" : history > 0 ? "phist" : "pfresh")
        defer { drop() }
        let now = Timestamp(microseconds: Int64(Date().timeIntervalSince1970 * 1_000_000))
        let ingestConfiguration = self.ingestConfiguration(url, prefix, untilIdle: false)
        var projectorConfiguration = self.projectorConfiguration(url, prefix, untilIdle: false)
        if history > 0 {
            var options = DemoStream.Options()
            options.events = history
            options.seed = 10
            options.badRounds = 0
            options.duplicateEvery = 0
            options.interactionShare = 0
            options.topicPrefix = prefix
            options.spanDays = 29
            options.end = now
            options.workspaceCount = workspaces
            options.workspaceSeed = 42
            try produce(DemoStream(options: options).messages)
            var load = ingestConfiguration
            load.untilIdle = true
            _ = try IngestWorker(configuration: load, logger: logger).run(stop: StopSignal())
            try PostgresConnection(url: url).execute("VACUUM ANALYZE")
            try skipToEnd(group: projectorConfiguration.group, prefix: prefix, url: url, ingestGroup: load.group)
        }
        var options = DemoStream.Options()
        options.events = rate * seconds
        options.seed = 8
        options.badRounds = 0
        options.duplicateEvery = 0
        options.interactionShare = interactionShare
        options.topicPrefix = prefix
        options.spanDays = 1
        options.end = Timestamp(microseconds: now.microseconds + Timestamp.microsecondsPerDay)
        options.workspaceCount = workspaces
        options.workspaceSeed = 42
        var messages = DemoStream(options: options).messages.filter {
            $0.topic != prefix + InputKind.intent.rawValue
        }
        // A second of the same traffic first, unmeasured: the first batches after the idle wait
        // (cold connections and caches on every side) are not what a steady stream costs.
        options.events = rate
        options.seed = 9
        let warmUp = DemoStream(options: options).messages.filter { $0.topic != prefix + InputKind.intent.rawValue }
        if let sampledEvery {
            projectorConfiguration.traceContext = true
            messages = messages.enumerated().map { index, message in
                // A trace per event: 32 hex digits of trace id, 16 of the producer's span id.
                let trace = String(format: "%016llx%016llx", UInt64(index) + 1, UInt64(seconds))
                let flags = index % max(sampledEvery, 1) == 0 ? "01" : "00"
                let header = "00-\(trace)-\(String(format: "%016llx", UInt64(index) + 1))-\(flags)"
                return KafkaOutgoingMessage(
                    topic: message.topic, key: message.key, value: message.value,
                    headers: [KafkaHeader(name: TraceParent.headerName, value: Array(header.utf8))])
            }
        }
        let stop = StopSignal()
        let latencies = LatencyBox()
        projectorConfiguration.onPublished = { latencies.append($0) }
        let batchLog = BatchLog()
        projectorConfiguration.onBatch = { batchLog.append($0, $1) }
        projectorConfiguration.publishNothing = floor
        let logger = self.logger
        let group = DispatchGroup()
        let (ic, pc) = (ingestConfiguration, projectorConfiguration)
        let cpuClock = ResultBox<clockid_t>()
        let summaryBox = ResultBox<Projector.Summary>()
        group.enter()
        Thread {
            _ = try? IngestWorker(configuration: ic, logger: logger).run(stop: stop)
            group.leave()
        }.start()
        group.enter()
        Thread {
            var id = clockid_t()
            pthread_getcpuclockid(pthread_self(), &id)
            cpuClock.set(.success(id))
            summaryBox.set(Swift.Result { try Projector(configuration: pc, logger: logger).run(stop: stop) })
            group.leave()
        }.start()
        // Made before the wait: it connects and gets its producer id meanwhile, so the stream's
        // first send isn't held up (and followed by a burst of the events due meanwhile).
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(client: KafkaClientConfiguration(brokers: brokers)))
        // Both groups joined, and the projector's state built from the history.
        Thread.sleep(forTimeInterval: history > 0 ? 15 : 8)
        // Sends at `rate`, a tick's share at a time.
        func pace(_ messages: [KafkaOutgoingMessage], from started: Date) throws {
            let tick = 0.05
            let perTick = max(Int(Double(rate) * tick), 1)
            var index = 0
            while index < messages.count {
                let due = started.addingTimeInterval(Double(index / perTick) * tick)
                let wait = due.timeIntervalSinceNow
                if wait > 0 { Thread.sleep(forTimeInterval: wait) }
                let end = min(index + perTick, messages.count)
                try producer.send(Array(messages[index..<end]))
                index = end
            }
        }
        try pace(warmUp, from: Date())
        let warmed = Date().addingTimeInterval(30)
        while latencies.count < warmUp.count, Date() < warmed { Thread.sleep(forTimeInterval: 0.05) }
        latencies.reset()
        // The projector's CPU from here on: the stream, not the rebuild before it.
        let projectorClock = try cpuClock.get()
        let cpuStarted = cpuSeconds(projectorClock)
        let processCpuStarted = cpuSeconds(CLOCK_PROCESS_CPUTIME_ID)
        let started = Date()
        try pace(messages, from: started)
        var result = Freshness()
        result.achievedRate = Double(messages.count) / Date().timeIntervalSince(started)
        // Let the tail drain, then stop both.
        let deadline = Date().addingTimeInterval(30)
        while latencies.count < messages.count, Date() < deadline { Thread.sleep(forTimeInterval: 0.2) }
        let cpuUsed = cpuSeconds(projectorClock) - cpuStarted
        let processCpuUsed = cpuSeconds(CLOCK_PROCESS_CPUTIME_ID) - processCpuStarted
        stop.stop()
        group.wait()
        let sorted = latencies.values.sorted()
        result.samples = sorted.count
        if !sorted.isEmpty {
            result.p50 = Double(sorted[sorted.count / 2])
            result.p95 = Double(sorted[min(sorted.count - 1, sorted.count * 95 / 100)])
            result.p99 = Double(sorted[min(sorted.count - 1, sorted.count * 99 / 100)])
        }
        let summary = try summaryBox.get()
        if summary.consumed > 0 {
            result.cpuMicrosPerEvent = cpuUsed * 1e6 / Double(summary.consumed)
            result.processCpuMicrosPerEvent = processCpuUsed * 1e6 / Double(summary.consumed)
        }
        result.stageMilliseconds = summary.stageSeconds.mapValues { $0 * 1000 / Double(max(summary.batches, 1)) }
        result.batches = summary.batches
        result.recordsPerEvent =
            Double(summary.signals + summary.vectors + summary.insights) / Double(max(summary.consumed, 1))
        result.slowest = floor ? [] : batchLog.slowest(3, after: started)
        return result
    }

    /// Commits the projector group where ingest stored the history: it starts after it. (Ingest's
    /// stored offsets, not the broker's watermarks, which the local broker can report short.)
    private func skipToEnd(group: String, prefix: String, url: String, ingestGroup: String) throws {
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(
                client: KafkaClientConfiguration(brokers: brokers), groupID: group),
            rebalance: KafkaRebalanceHandler(
                assigned: { $0.map { KafkaTopicPartitionOffset($0, offset: .committed) } }, revoked: { _ in }))
        defer { consumer.close() }
        var offsets: [KafkaTopicPartition: Int64] = [:]
        for row in try PostgresConnection(url: url).execute(
            "SELECT topic, partition, next_offset FROM bte.ingest_offsets WHERE consumer_group = $1", [ingestGroup]
        ).rows {
            guard let topic = row[0], let partition = row[1].flatMap({ Int32($0) }),
                let offset = row[2].flatMap({ Int64($0) }), !topic.hasSuffix(InputKind.intent.rawValue)
            else { continue }
            offsets[KafkaTopicPartition(topic: topic, partition: partition)] = offset
        }
        try consumer.assign(offsets.keys.sorted().map { KafkaTopicPartitionOffset($0, offset: .committed) })
        try consumer.commit(offsets)
    }

    /// A large business history stored by ingest, then one sweep over it.
    private func sweep(into result: inout Result) throws {
        let (url, prefix, drop) = try setUp("psweep")
        defer { drop() }
        var options = DemoStream.Options()
        options.events = sweepEvents
        options.seed = 9
        options.badRounds = 0
        options.duplicateEvery = 0
        options.interactionShare = 0
        options.topicPrefix = prefix
        try produce(DemoStream(options: options).messages)
        let summary = try IngestWorker(configuration: ingestConfiguration(url, prefix, untilIdle: true), logger: logger)
            .run(stop: StopSignal())
        result.sweepStored = summary.totalStored
        result.sweepBusiness = summary.stored[.businessEvents, default: 0] + summary.stored[.userActions, default: 0]
        // Statistics as autovacuum would have them a little later; without them the planner
        // takes the freshly loaded tables for empty ones.
        let analyzeStarted = DispatchTime.now()
        try PostgresConnection(url: url).execute("VACUUM ANALYZE")
        result.analyzeSeconds = Double(DispatchTime.now().uptimeNanoseconds - analyzeStarted.uptimeNanoseconds) / 1e9
        var sweep = Sweep(brokers: brokers, readerURL: with(url, user: "bte_reader"), logger: logger)
        sweep.topicPrefix = prefix
        let started = DispatchTime.now()
        let swept = try sweep.run(asOf: options.end)
        result.sweepSeconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
        result.sweepWorkspaces = swept.workspaces
        result.sweepStages = swept.stages
    }
}

/// One value handed from a worker thread.
final class ResultBox<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Swift.Result<T, any Error>?
    func set(_ value: Swift.Result<T, any Error>) {
        lock.lock()
        result = value
        lock.unlock()
    }
    func get() throws -> T {
        lock.lock()
        defer { lock.unlock() }
        guard let result else { throw BenchmarkError(message: "a worker produced no result") }
        return try result.get()
    }
}

/// Each batch's stages, with when it was committed.
final class BatchLog: @unchecked Sendable {
    struct Entry {
        let at: Date
        let laps: [(String, Int64)]
        let messages: Int
        var milliseconds: Double { Double(laps.reduce(0) { $0 + $1.1 }) / 1e6 }
    }
    private let lock = NSLock()
    private var entries: [Entry] = []
    func append(_ laps: [(String, Int64)], _ messages: Int) {
        lock.lock()
        entries.append(Entry(at: Date(), laps: laps, messages: messages))
        lock.unlock()
    }
    /// The `count` slowest batches committed after `start`, one line each: when, how long, stages.
    func slowest(_ count: Int, after start: Date) -> [String] {
        lock.lock()
        defer { lock.unlock() }
        return entries.filter { $0.at >= start }.sorted { $0.milliseconds > $1.milliseconds }.prefix(count).map {
            entry in
            let stages = entry.laps.map { "\($0.0) " + String(format: "%.0f", Double($0.1) / 1e6) }
            return String(
                format: "%.1f s: %.0f ms, %d events (", entry.at.timeIntervalSince(start), entry.milliseconds,
                entry.messages) + stages.joined(separator: ", ") + ")"
        }
    }
}

final class LatencyBox: @unchecked Sendable {
    private let lock = NSLock()
    private var samples: [Int64] = []
    func append(_ values: [Int64]) {
        lock.lock()
        samples += values
        lock.unlock()
    }
    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return samples.count
    }
    func reset() {
        lock.lock()
        samples = []
        lock.unlock()
    }
    var values: [Int64] {
        lock.lock()
        defer { lock.unlock() }
        return samples
    }
}

/// CPU time of a thread's clock, seconds.
func cpuSeconds(_ clock: clockid_t) -> Double {
    var spec = timespec()
    clock_gettime(clock, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

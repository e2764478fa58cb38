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

    public init(brokers: String, adminURL: String, logger: Logger) {
        self.brokers = brokers
        self.adminURL = adminURL
        self.logger = logger
    }

    public struct Result: Sendable {
        public var ingestRate = 0.0
        public var projectorRate = 0.0
        public var freshnessP50 = 0.0
        public var freshnessP95 = 0.0
        public var freshnessP99 = 0.0
        public var freshnessSamples = 0
        public var achievedRate = 0.0
        public var sweepSeconds = 0.0
        public var sweepStored = 0
        public var sweepWorkspaces = 0
        public var analyzeSeconds = 0.0
        public var sweepBusiness = 0

        public func render() -> String {
            var lines: [String] = []
            if projectorRate > 0 {
                lines.append(
                    """
                    projector throughput while ingest runs: \(Int(projectorRate.rounded())) input events/s \
                    (ingest \(Int(ingestRate.rounded())) events/s in the same run)
                    """)
            }
            lines.append(
                """
                freshness produce → signal published at \(Int(achievedRate.rounded())) events/s: \
                p50 \(Int(freshnessP50)) ms, p95 \(Int(freshnessP95)) ms, p99 \(Int(freshnessP99)) ms \
                (\(freshnessSamples) interaction and business events of a mixed stream; \
                its intent telemetry is not projected)
                """)
            if sweepStored > 0 {
                lines.append(
                    """
                    sweep over \(sweepStored) stored events, \(sweepBusiness) of them business events and user actions \
                    (\(sweepWorkspaces) workspaces): \(String(format: "%.2f", sweepSeconds)) s \
                    (after ANALYZE, \(String(format: "%.1f", analyzeSeconds)) s)
                    """)
            }
            return lines.joined(separator: "\n")
        }
    }

    public func run(freshnessOnly: Bool = false) throws -> Result {
        var result = Result()
        if freshnessOnly {
            try freshness(into: &result)
            return result
        }
        try throughput(into: &result)
        try freshness(into: &result)
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

    /// A producer at a steady rate while ingest and projector run; latency per event from its
    /// producer timestamp to the acknowledgement of the signals it caused.
    private func freshness(into result: inout Result) throws {
        let (url, prefix, drop) = try setUp("pfresh")
        defer { drop() }
        let messages = stream(rate * seconds, prefix: prefix, seed: 8, share: 0.7).messages
        let stop = StopSignal()
        let latencies = LatencyBox()
        var projectorConfiguration = self.projectorConfiguration(url, prefix, untilIdle: false)
        projectorConfiguration.onPublished = { latencies.append($0) }
        // The production defaults: batches close by size, or by linger below saturation.
        let ingestConfiguration = self.ingestConfiguration(url, prefix, untilIdle: false)
        let logger = self.logger
        let group = DispatchGroup()
        let (ic, pc) = (ingestConfiguration, projectorConfiguration)
        group.enter()
        Thread {
            _ = try? IngestWorker(configuration: ic, logger: logger).run(stop: stop)
            group.leave()
        }.start()
        group.enter()
        Thread {
            _ = try? Projector(configuration: pc, logger: logger).run(stop: stop)
            group.leave()
        }.start()
        Thread.sleep(forTimeInterval: 8)  // both groups joined
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(client: KafkaClientConfiguration(brokers: brokers)))
        let started = Date()
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
        result.achievedRate = Double(messages.count) / Date().timeIntervalSince(started)
        // Let the tail drain, then stop both.
        let deadline = Date().addingTimeInterval(30)
        while latencies.count < messages.count, Date() < deadline { Thread.sleep(forTimeInterval: 0.2) }
        stop.stop()
        group.wait()
        let sorted = latencies.values.sorted()
        result.freshnessSamples = sorted.count
        if !sorted.isEmpty {
            result.freshnessP50 = Double(sorted[sorted.count / 2])
            result.freshnessP95 = Double(sorted[min(sorted.count - 1, sorted.count * 95 / 100)])
            result.freshnessP99 = Double(sorted[min(sorted.count - 1, sorted.count * 99 / 100)])
        }
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
        try PostgresConnection(url: url).execute("ANALYZE")
        result.analyzeSeconds = Double(DispatchTime.now().uptimeNanoseconds - analyzeStarted.uptimeNanoseconds) / 1e9
        var sweep = Sweep(brokers: brokers, readerURL: with(url, user: "bte_reader"), logger: logger)
        sweep.topicPrefix = prefix
        let started = DispatchTime.now()
        let swept = try sweep.run(asOf: options.end)
        result.sweepSeconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
        result.sweepWorkspaces = swept.workspaces
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
    var values: [Int64] {
        lock.lock()
        defer { lock.unlock() }
        return samples
    }
}

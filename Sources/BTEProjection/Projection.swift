import BTECompute
import BTEDomain
import BTEStore
import Dispatch
import Foundation
import Kafka
import Logging
import Metrics

/// What one projection computes: signals, behavioral vectors, insights, and dead letters for
/// signals that could not be computed.
public struct ProjectionOutputs: Sendable {
    public var thresholdsVersion = 0
    public var signals: [SignalRecord] = []
    public var insights: [InsightRecord] = []
    /// Behavioral vectors as published (the vector JSON is built once, here).
    public var vectors: [KafkaOutgoingMessage] = []
    public var failures: [KafkaOutgoingMessage] = []
    /// In-context delivery decisions (the projector's; the sweep takes none).
    public var deliveries: [DeliveryDecision] = []
    /// The trace context of each record above, by position, when the projector carries them
    /// (`Projector.Configuration.traceContext`); empty otherwise.
    public var signalTraces: [TraceParent?] = []
    public var insightTraces: [TraceParent?] = []
    public var vectorTraces: [TraceParent?] = []
    public var deliveryTraces: [TraceParent?] = []

    /// How many records of each kind there are (to attach a trace to the ones added since).
    var counts: (signals: Int, insights: Int, vectors: Int, deliveries: Int) {
        (signals.count, insights.count, vectors.count, deliveries.count)
    }

    /// Gives the records added since `counts` the trace `context` (none: nil).
    mutating func trace(
        since counts: (signals: Int, insights: Int, vectors: Int, deliveries: Int), _ context: TraceParent?
    ) {
        func pad(_ traces: inout [TraceParent?], from: Int, to: Int) {
            traces += Array(repeating: nil, count: max(from - traces.count, 0))
            traces += Array(repeating: context, count: max(to - traces.count, 0))
        }
        pad(&signalTraces, from: counts.signals, to: signals.count)
        pad(&insightTraces, from: counts.insights, to: insights.count)
        pad(&vectorTraces, from: counts.vectors, to: vectors.count)
        pad(&deliveryTraces, from: counts.deliveries, to: deliveries.count)
    }

    /// Outputs per output topic, by the topic's unprefixed name (for metrics).
    public func countsByTopic() -> [String: Int] {
        [
            OutputTopic.signals.rawValue: signals.count, OutputTopic.behavioralVectors.rawValue: vectors.count,
            OutputTopic.insights.rawValue: insights.count, OutputTopic.deadLetter.rawValue: failures.count,
            OutputTopic.insightDeliveries.rawValue: deliveries.count,
        ].filter { $0.value > 0 }
    }

    /// Every output as a message to its topic: signals, vectors, insights, dead letters, then
    /// delivery decisions (keyed workspace/user).
    public func messages(prefix: String) -> [KafkaOutgoingMessage] {
        let signalsTopic = OutputTopic.signals.name(prefix: prefix)
        let insightsTopic = OutputTopic.insights.name(prefix: prefix)
        let deliveriesTopic = OutputTopic.insightDeliveries.name(prefix: prefix)
        func headers(_ traces: [TraceParent?], _ index: Int) -> [KafkaHeader] {
            guard index < traces.count, let context = traces[index] else { return [] }
            return [KafkaHeader(name: TraceParent.headerName, value: Array(context.header.utf8))]
        }
        return signals.enumerated().map { index, signal in
            KafkaOutgoingMessage(
                topic: signalsTopic, key: Array(signal.workspaceID.utf8), value: signal.json(),
                headers: headers(signalTraces, index))
        }
            + (vectorTraces.isEmpty
                ? vectors
                : vectors.enumerated().map { index, vector in
                    KafkaOutgoingMessage(
                        topic: vector.topic, key: vector.key, value: vector.value, partition: vector.partition,
                        headers: headers(vectorTraces, index))
                })
            + insights.enumerated().map { index, insight in
                KafkaOutgoingMessage(
                    topic: insightsTopic, key: Array(insight.workspaceID.utf8), value: insight.json(),
                    headers: headers(insightTraces, index))
            }
            + failures
            + deliveries.enumerated().map { index, decision in
                KafkaOutgoingMessage(
                    topic: deliveriesTopic, key: Array("\(decision.workspaceID)/\(decision.userID)".utf8),
                    value: decision.json(thresholdsVersion: thresholdsVersion), headers: headers(deliveryTraces, index))
            }
    }
}

/// The sweep's path from stored history to outputs (every active entity, as of one instant).
/// It finishes the records from the same aggregates as the projector's incremental state, so
/// the same inputs give the same bytes whichever runs. Call it inside the reader's snapshot, so
/// every query sees the same logs.
struct Projection {
    let topicPrefix: String
    let logger: Logger
    let metrics: any MetricsFactory
    /// Where the computation came from, for dead letters: an input topic, or `bte.sweep`.
    let source: String
    /// Ranges a sweep reads one at a time. More ranges hold fewer rows at once (a million stored
    /// events: 130 MB with 16, 580 MB with 2), but ingest stores rows in arrival order, so each
    /// range's rows lie all over the log and every range costs the server close to a full scan:
    /// on two cores, 16 ranges took longer than 2.
    static let sweepParts = 2

    /// Every workspace and user active in the 30 days before `asOf`. The workspaces are split
    /// by id into `sweepParts` ranges; each reader (each on its own connection, all in one
    /// snapshot) takes the next range left, reads it and computes it on its own thread, so only
    /// a range's rows are held at a time. The outputs are in workspace order whatever the split.
    func sweep(readers: [HistoryReader], asOf: Timestamp, clock: inout StageClock) throws
        -> (workspaces: Int, outputs: ProjectionOutputs)
    {
        let thresholds = try readers[0].thresholds()
        let ranges = WorkspaceRange.parts(Self.sweepParts)
        let parts = Slots<(workspaces: Int, outputs: ProjectionOutputs)>(count: ranges.count)
        let peers = Once<PeerIndex>()
        let this = self
        // Each thread uses its own reader (its own connection) and nothing else of the other's.
        // The first reads the window's successes while the others read their first range.
        nonisolated(unsafe) let readers = readers
        DispatchQueue.concurrentPerform(iterations: readers.count) { index in
            let reader = readers[index]
            func readPeers() throws -> PeerIndex { try peers.get { try reader.sweepPeers(asOf: asOf) } }
            // A failure is kept in `peers` and thrown to every range that needs them.
            if index == 0 { _ = try? readPeers() }
            while let next = parts.claim() {
                parts.set(
                    next,
                    Result {
                        try this.workspaces(
                            reader: reader, range: ranges[next], peers: readPeers, asOf: asOf, thresholds: thresholds)
                    })
            }
        }
        var outputs = ProjectionOutputs(thresholdsVersion: thresholds.version)
        var workspaces = 0
        for part in try parts.values() {
            workspaces += part.workspaces
            outputs.signals += part.outputs.signals
            outputs.insights += part.outputs.insights
            outputs.failures += part.outputs.failures
        }
        clock.lap("workspaces")
        let users = try readers[0].activeUsers(asOf: asOf)
        let interactions = Dictionary(
            grouping: try readers[0].interactions(
                Dictionary(uniqueKeysWithValues: users.map { ($0, asOf) })), by: \.user)
        let consent = try readers[0].consent(to: .behavioralProfile, of: users)
        clock.lap("interaction reads")
        let vectorsTopic = OutputTopic.behavioralVectors.name(prefix: topicPrefix)
        outputs.vectors = users.sorted().compactMap { user in
            guard consent[user]?.allows(at: asOf.microseconds) ?? true,
                let vector = VectorComputer().compute(user: user, interactions: interactions[user] ?? [], asOf: asOf)
            else { return nil }
            return KafkaOutgoingMessage(
                topic: vectorsTopic, key: Array(user.topicKey.utf8),
                value: vector.json(thresholdsVersion: thresholds.version, computedFrom: vector.totalInteractions))
        }
        clock.lap("vectors")
        return (workspaces, outputs)
    }

    /// Signals, dead letters and insights of the active workspaces in `range`, in workspace order.
    private func workspaces(
        reader: HistoryReader, range: WorkspaceRange, peers: () throws -> PeerIndex, asOf: Timestamp,
        thresholds: Thresholds
    ) throws -> (workspaces: Int, outputs: ProjectionOutputs) {
        var outputs = ProjectionOutputs(thresholdsVersion: thresholds.version)
        let computer = SignalComputer(thresholds: thresholds)
        let reporter = ComputationFailures(
            logger: logger, metrics: metrics, deadLetterTopic: OutputTopic.deadLetter.name(prefix: topicPrefix),
            source: source)
        let histories = try reader.sweepHistories(asOf: asOf, range: range, peers: peers)
        for history in histories {
            let evaluated = computer.evaluateRecords(history, asOf: asOf)
            outputs.signals += evaluated.records
            outputs.failures += reporter.report(workspaceID: history.workspaceID, failed: evaluated.failed, asOf: asOf)
            outputs.insights += InsightComputer().records(history, asOf: asOf, thresholdsVersion: thresholds.version)
        }
        return (histories.count, outputs)
    }
}

/// One result per part of a computation, handed back under a lock; worker threads claim the
/// parts one at a time.
final class Slots<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [Result<T, any Error>?]
    private var claimed = 0

    /// The next part no thread has taken, or nil when every part has been.
    func claim() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard claimed < results.count else { return nil }
        claimed += 1
        return claimed - 1
    }

    init(count: Int) { results = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ result: Result<T, any Error>) {
        lock.lock()
        results[index] = result
        lock.unlock()
    }

    /// Every slot's value in order, or the first slot's error.
    func values() throws -> [T] {
        lock.lock()
        defer { lock.unlock() }
        return try results.map { result in
            guard let result else { throw StoreError(.permission, "a worker thread returned nothing") }
            return try result.get()
        }
    }
}

/// A value the first thread to ask makes, while later ones wait for it (whatever order a
/// thread pool runs them in).
final class Once<T>: @unchecked Sendable {
    private let condition = NSCondition()
    private var making = false
    private var result: Result<T, any Error>?

    func get(_ make: () throws -> T) throws -> T {
        condition.lock()
        while true {
            if let result {
                condition.unlock()
                return try result.get()
            }
            if !making { break }
            condition.wait()
        }
        making = true
        condition.unlock()
        let made = Result { try make() }
        condition.lock()
        result = made
        condition.broadcast()
        condition.unlock()
        return try made.get()
    }
}

import BTEDomain

/// A partial aggregate that adds and subtracts exactly: merged in any order, taken apart again,
/// it always gives the same value. Floating point appears only when a signal is finished.
public protocol Partial: Sendable, Equatable {
    static var zero: Self { get }
    mutating func add(_ other: Self)
    mutating func subtract(_ other: Self)
}

/// Metadata amounts in millionths, summed exactly. An amount too large to sum exactly (or not
/// finite) is counted as an overflow: its sum is undefined and the signal is reported as a
/// failure, as a sum that overflowed to infinity would be.
public struct Amount: Partial {
    public var micros: Int128 = 0
    public var overflows = 0

    public static let zero = Amount()
    /// 10^24: any sum of fewer than 10^14 amounts below it fits an Int128 of millionths.
    static let limit = 1e24

    public init() {}

    public init(_ value: Double?) {
        guard let value else { return }
        guard value.isFinite, abs(value) < Amount.limit else {
            overflows = 1
            return
        }
        micros = Int128((value * 1_000_000).rounded())
    }

    public mutating func add(_ other: Amount) {
        micros &+= other.micros
        overflows += other.overflows
    }

    public mutating func subtract(_ other: Amount) {
        micros &-= other.micros
        overflows -= other.overflows
    }

    /// The sum, or infinity when an amount could not be summed exactly.
    public var value: Double { overflows > 0 ? .infinity : Double(micros) / 1_000_000 }
}

/// Acts in the window: latencies (microseconds) and the page views before each act.
/// (Sums of 128-bit integers wrap rather than trap: a producer can't stop the projector with
/// absurd values, and adding then subtracting a partial still restores the sum exactly.)
public struct ActPartial: Partial {
    public var count = 0
    public var latency: Int128 = 0
    public var latencySquares: Int128 = 0
    public var views = 0

    public static let zero = ActPartial()
    public init() {}
    public init(latency: Int64, views: Int) {
        count = 1
        self.latency = Int128(latency)
        latencySquares = Int128(latency) * Int128(latency)
        self.views = views
    }

    public mutating func add(_ other: ActPartial) {
        count += other.count
        latency &+= other.latency
        latencySquares &+= other.latencySquares
        views += other.views
    }

    public mutating func subtract(_ other: ActPartial) {
        count -= other.count
        latency &-= other.latency
        latencySquares &-= other.latencySquares
        views -= other.views
    }
}

/// Givens in the window: how many, how many acted on, Σ expected and Σ realized of their acts.
public struct GivenPartial: Partial {
    public var count = 0
    public var acted = 0
    public var expected = Amount()
    public var realized = Amount()

    public static let zero = GivenPartial()
    public init() {}
    /// A given: `realized` is nil without an act (an act without the number realizes 0).
    public init(expected: Double?, acted: Bool, realized: Double??) {
        count = 1
        self.acted = acted ? 1 : 0
        self.expected = Amount(expected)
        if case .some(let value) = realized { self.realized = Amount(value) }
    }

    public mutating func add(_ other: GivenPartial) {
        count += other.count
        acted += other.acted
        expected.add(other.expected)
        realized.add(other.realized)
    }

    public mutating func subtract(_ other: GivenPartial) {
        count -= other.count
        acted -= other.acted
        expected.subtract(other.expected)
        realized.subtract(other.realized)
    }
}

/// Workflows started in the window, and how many of them were completed.
public struct WorkflowPartial: Partial {
    public var started = 0
    public var done = 0

    public static let zero = WorkflowPartial()
    public init(started: Int = 0, done: Int = 0) {
        self.started = started
        self.done = done
    }

    public mutating func add(_ other: WorkflowPartial) {
        started += other.started
        done += other.done
    }

    public mutating func subtract(_ other: WorkflowPartial) {
        started -= other.started
        done -= other.done
    }
}

/// A count per key (stages of abandonment, orders per customer, stalled deals); keys at zero
/// are dropped. The keys are also kept sorted, and those counted twice or more apart, so a
/// window's smallest keys and its repeats are read without going through all of them.
public struct CountsPartial: Partial {
    public private(set) var counts: [String: Int] = [:]
    /// The keys, sorted by `<`.
    public private(set) var sortedKeys: [String] = []
    /// The keys counted two times or more, with their counts.
    public private(set) var repeats: [String: Int] = [:]

    public static let zero = CountsPartial()
    public init() {}
    public init(_ key: String, _ count: Int = 1) { change(key, by: count) }

    private mutating func change(_ key: String, by delta: Int) {
        let old = counts[key, default: 0]
        let new = old + delta
        counts[key] = new == 0 ? nil : new
        repeats[key] = new >= 2 ? new : nil
        if old == 0, new != 0 {
            sortedKeys.insert(key, at: insertionIndex(key))
        } else if old != 0, new == 0 {
            let index = insertionIndex(key)
            if index < sortedKeys.count, sortedKeys[index] == key { sortedKeys.remove(at: index) }
        }
    }

    /// The first index whose key is not below `key`.
    private func insertionIndex(_ key: String) -> Int {
        if let last = sortedKeys.last, last < key { return sortedKeys.count }
        var low = 0
        var high = sortedKeys.count
        while low < high {
            let mid = (low + high) / 2
            if sortedKeys[mid] < key { low = mid + 1 } else { high = mid }
        }
        return low
    }

    public mutating func add(_ other: CountsPartial) {
        for (key, count) in other.counts { change(key, by: count) }
    }

    public mutating func subtract(_ other: CountsPartial) {
        for (key, count) in other.counts { change(key, by: -count) }
    }
}

/// Plain counts.
public struct CountPartial: Partial {
    public var count = 0
    public static let zero = CountPartial()
    public init(_ count: Int = 0) { self.count = count }
    public mutating func add(_ other: CountPartial) { count += other.count }
    public mutating func subtract(_ other: CountPartial) { count -= other.count }
}

/// A count and an exact sum (of microseconds).
public struct SumPartial: Partial {
    public var count = 0
    public var sum: Int128 = 0
    public static let zero = SumPartial()
    public init() {}
    public init(_ value: Int64) {
        count = 1
        sum = Int128(value)
    }
    public mutating func add(_ other: SumPartial) {
        count += other.count
        sum &+= other.sum
    }
    public mutating func subtract(_ other: SumPartial) {
        count -= other.count
        sum &-= other.sum
    }
}

/// Everything a workspace's signals are finished from, as of one instant. The full computation
/// (``SignalComputer/aggregates(_:asOf:)``) and the incremental state both produce it; equal
/// aggregates give byte-identical records.
public struct SignalAggregates: Sendable, Equatable {
    /// The workspace's own business events and user actions in the window.
    public var used = 0
    public var acts = ActPartial()
    public var newestAction: Int64?
    public var actionsThisWeek = 0
    public var actionsLastWeek = 0
    public var givens = GivenPartial()
    public var workflows = WorkflowPartial()
    public var stages = CountsPartial()
    public var missed = 0

    public init() {}

    public func signals(thresholds: Thresholds, asOf: Timestamp) -> [SignalValue] {
        var signals: [SignalValue] = []
        // decision_latency, execution_consistency: mean and population deviation of latencies.
        if acts.count > 0 {
            let n = Int128(acts.count)
            signals.append(SignalValue(.decisionLatency, Double(acts.latency) / Double(n) / 1_000_000))
            if acts.count >= 2 {
                // n·Σx² − (Σx)² = n²·variance, exact; infinite (a failure) if it can't be held.
                let (scaled, o1) = n.multipliedReportingOverflow(by: acts.latencySquares)
                let (square, o2) = acts.latency.multipliedReportingOverflow(by: acts.latency)
                let (difference, o3) = scaled.subtractingReportingOverflow(square)
                let deviation =
                    o1 || o2 || o3 ? Double.infinity : Double(difference).squareRoot() / Double(n) / 1_000_000
                signals.append(SignalValue(.executionConsistency, deviation))
            }
        }
        if let newest = newestAction {
            signals.append(SignalValue(.idleDecay, Double(asOf.microseconds - newest) / SignalComputer.day))
        }
        if actionsLastWeek > 0 {
            signals.append(SignalValue(.momentum, Double(actionsThisWeek) / Double(actionsLastWeek)))
        }
        if givens.count > 0 {
            signals.append(SignalValue(.nbaAdoptionRate, Double(givens.acted) / Double(givens.count)))
        }
        if workflows.started > 0 {
            signals.append(SignalValue(.followThroughRate, Double(workflows.done) / Double(workflows.started)))
        }
        // The most frequent stage; ties by code points.
        let top = stages.counts.min { a, b in
            a.value != b.value
                ? a.value > b.value : a.key.unicodeScalars.lexicographicallyPrecedes(b.key.unicodeScalars)
        }
        if let top { signals.append(SignalValue(.dropOffPoint, Double(top.value), label: top.key)) }
        let expectedViews = thresholds.value("hesitation.expected_views")
        if acts.count > 0, expectedViews > 0 {
            signals.append(SignalValue(.hesitationIndex, Double(acts.views) / Double(acts.count) / expectedViews))
        }
        if givens.count > 0 {
            signals.append(SignalValue(.missedOpportunityCount, Double(missed)))
            var gap = givens.expected
            gap.subtract(givens.realized)
            // Both sums exact: overflow in either leaves the gap undefined.
            if givens.expected.overflows > 0 || givens.realized.overflows > 0 { gap.overflows = 1 }
            signals.append(SignalValue(.executionGap, gap.value))
        }
        return signals
    }
}

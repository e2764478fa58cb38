/// Partials keyed by event time, summed over the window (T − from, T − to] while T only grows:
/// each partial enters the sum once and leaves it once, so moving the window costs what moved,
/// not what the window holds. A partial for any time may arrive at any moment (a late event, a
/// correction as a negated partial); one that can never be in a window again is dropped.
public struct SlidingSum<P: Partial>: Sendable {
    /// The window's far end, back from T; nil for everything up to T − to.
    public let from: Int64?
    public let to: Int64
    private var times: [Int64] = []
    private var parts: [P] = []
    /// The first partial in the window, and the first after it.
    private var lower = 0
    private var upper = 0
    public private(set) var sum = P.zero
    public private(set) var asOf: Int64?

    public init(from: Int64?, to: Int64 = 0) {
        self.from = from
        self.to = to
    }

    /// Partials held (in and ahead of the window): the state's size.
    public var count: Int { times.count - lower }

    public mutating func advance(to t: Int64) {
        if let asOf, t <= asOf { return }
        asOf = t
        while upper < times.count, times[upper] <= t - to {
            sum.add(parts[upper])
            upper += 1
        }
        guard let from else { return }
        while lower < upper, times[lower] <= t - from {
            sum.subtract(parts[lower])
            lower += 1
        }
        // What left the window never comes back (T only grows): drop it now and then.
        if lower >= 64, lower * 2 >= times.count {
            times.removeFirst(lower)
            parts.removeFirst(lower)
            upper -= lower
            lower = 0
        }
    }

    public mutating func insert(_ time: Int64, _ part: P) {
        if let t = asOf, let from, time <= t - from { return }
        let index = upperBound(time)
        times.insert(time, at: index)
        parts.insert(part, at: index)
        if let t = asOf, time <= t - to {
            // In the window: lower ≤ index ≤ upper.
            sum.add(part)
            upper += 1
        }
    }

    public mutating func remove(_ time: Int64, _ part: P) {
        var negated = P.zero
        negated.subtract(part)
        insert(time, negated)
    }

    private func upperBound(_ time: Int64) -> Int {
        // Usually at the end: events mostly arrive in time order.
        if let last = times.last, last <= time { return times.count }
        var low = lower
        var high = times.count
        while low < high {
            let mid = (low + high) / 2
            if times[mid] <= time { low = mid + 1 } else { high = mid }
        }
        return low
    }
}

/// A sorted multiset of times with counts over ranges in logarithmic time.
public struct SortedTimes: Sendable, Equatable {
    public private(set) var values: [Int64] = []

    public init() {}

    public var isEmpty: Bool { values.isEmpty }

    public mutating func insert(_ value: Int64) {
        values.insert(value, at: upperBound(value))
    }

    public mutating func remove(_ value: Int64) {
        let index = lowerBound(value)
        if index < values.count, values[index] == value { values.remove(at: index) }
    }

    /// Values v with low < v <= high.
    public func count(after low: Int64, upTo high: Int64) -> Int {
        high <= low ? 0 : max(upperBound(high) - upperBound(low), 0)
    }

    /// Values v with low < v < high.
    public func count(after low: Int64, before high: Int64) -> Int {
        high <= low ? 0 : max(lowerBound(high) - upperBound(low), 0)
    }

    /// Drops values at or before `time`.
    public mutating func prune(upTo time: Int64) {
        let index = upperBound(time)
        if index >= 64 { values.removeFirst(index) }
    }

    func upperBound(_ value: Int64) -> Int {
        if let last = values.last, last <= value { return values.count }
        var low = 0
        var high = values.count
        while low < high {
            let mid = (low + high) / 2
            if values[mid] <= value { low = mid + 1 } else { high = mid }
        }
        return low
    }

    func lowerBound(_ value: Int64) -> Int {
        var low = 0
        var high = values.count
        while low < high {
            let mid = (low + high) / 2
            if values[mid] < value { low = mid + 1 } else { high = mid }
        }
        return low
    }
}

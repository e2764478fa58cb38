import BTEDomain

/// A person's consent to one purpose over time, from their `consent.granted` and
/// `consent.withdrawn` events: at a time, the newest of them at or before it holds (by time,
/// then event id, so two at the same microsecond are ordered by the log's content alone).
/// Without any, consent holds: a purpose is processed until it is withdrawn.
public struct ConsentTimeline: Sendable, Equatable {
    public struct Change: Sendable, Equatable {
        public let time: Int64
        public let eventID: String
        public let granted: Bool

        public init(time: Int64, eventID: String, granted: Bool) {
            self.time = time
            self.eventID = eventID
            self.granted = granted
        }
    }

    /// Ordered by (time, event id).
    public private(set) var changes: [Change]

    public init(_ changes: [Change] = []) {
        self.changes = changes.sorted { ($0.time, $0.eventID) < ($1.time, $1.eventID) }
    }

    /// Whether the purpose may be processed as of `time`.
    public func allows(at time: Int64) -> Bool {
        // The last change at or before `time`: changes are few, and a binary search finds it.
        var low = 0
        var high = changes.count
        while low < high {
            let middle = low + (high - low) / 2
            if changes[middle].time <= time { low = middle + 1 } else { high = middle }
        }
        return low == 0 || changes[low - 1].granted
    }

    /// The purposes consent events name that BTE enforces per person.
    public typealias Purpose = ConsentPurpose
}

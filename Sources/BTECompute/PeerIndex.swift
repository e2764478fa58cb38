import BTEDomain

/// Successful acts of all workspaces, indexed by (sub-vertical, action type), so each workspace
/// asks "how often did another workspace succeed with X in this window?" quickly.
///
/// Each success has an order key (`PeerSuccess.order`): which successes an event may count is
/// fixed by the log, not by when the projector read them. `through(_:)` gives the index as an
/// event with that bound sees it: only successes whose key is at most the bound.
public struct PeerIndex: Sendable {
    struct Key: Hashable, Sendable {
        let subVertical: String
        let actionType: String
    }

    /// Times in key order, with counts by time over any prefix of keys: the prefix is made of
    /// whole blocks (their times kept sorted) and the start of one more.
    struct Column: Sendable {
        static let block = 128
        var times: [Int64] = []
        var orders: [Int64] = []
        var sortedBlocks: [[Int64]] = []
        /// Every time, sorted: the count when the bound passes every key.
        var sorted: [Int64] = []

        mutating func insert(time: Int64, order: Int64) {
            sorted.insert(time, at: upperBound(sorted, time))
            let at = upperBound(orders, order)
            times.insert(time, at: at)
            orders.insert(order, at: at)
            // Appending (keys arrive in order) touches the last block only.
            let first = at / Self.block
            sortedBlocks.removeSubrange(min(first, sortedBlocks.count)...)
            var start = sortedBlocks.count * Self.block
            while start + Self.block <= times.count {
                sortedBlocks.append(times[start..<start + Self.block].sorted())
                start += Self.block
            }
        }

        /// Times in (low, high] whose key is at most `bound`.
        func count(_ low: Int64, _ high: Int64, through bound: Int64) -> Int {
            guard let last = orders.last else { return 0 }
            let all = upperBound(sorted, high) - upperBound(sorted, low)
            if bound >= last { return all }
            let prefix = upperBound(orders, bound)
            // Few keys past the bound (an event just behind the newest successes): subtract them.
            if times.count - prefix <= Self.block {
                return all - times[prefix...].count { $0 > low && $0 <= high }
            }
            var result = 0
            let whole = prefix / Self.block
            for block in sortedBlocks[..<whole] { result += upperBound(block, high) - upperBound(block, low) }
            return result + times[(whole * Self.block)..<prefix].count { $0 > low && $0 <= high }
        }
    }

    struct Entries: Sendable {
        var all = Column()
        var byWorkspace: [String: Column] = [:]
    }

    private var entries: [Key: Entries] = [:]
    /// Action types seen per sub-vertical, sorted, for next-best-action.
    private var actionTypes: [String: [String]] = [:]
    /// Only successes with an order key up to this count (`through`).
    private var bound = Int64.max

    public init(_ peers: [PeerSuccess]) {
        for peer in peers.sorted(by: { $0.order < $1.order }) { insert(peer) }
    }

    /// Adds a success (one stored since the index was built).
    public mutating func insert(_ peer: PeerSuccess) {
        let key = Key(subVertical: peer.subVerticalID, actionType: peer.actionType)
        let time = peer.timestamp.microseconds
        if entries[key] == nil {
            var types = actionTypes[peer.subVerticalID] ?? []
            types.insert(peer.actionType, at: types.firstIndex { $0 > peer.actionType } ?? types.count)
            actionTypes[peer.subVerticalID] = types
        }
        // In place: a copy taken out of the dictionary would copy the key's columns on every insert.
        entries[key, default: Entries()].all.insert(time: time, order: peer.order)
        entries[key, default: Entries()].byWorkspace[peer.workspaceID, default: Column()].insert(
            time: time, order: peer.order)
        count += 1
    }

    /// The index as an event whose bound is `order` sees it: successes with a greater key are
    /// left out of every count. (A copy: the storage is shared.)
    public func through(_ order: Int64) -> PeerIndex {
        var copy = self
        copy.bound = order
        return copy
    }

    /// Successes held.
    public private(set) var count = 0

    /// Successes with `actionType` in `subVertical` within (after, upTo] by workspaces other than `excluding`.
    public func count(subVertical: String, actionType: String, excluding: String, after: Timestamp, upTo: Timestamp)
        -> Int
    {
        guard let found = entries[Key(subVertical: subVertical, actionType: actionType)] else { return 0 }
        let (low, high) = (after.microseconds, upTo.microseconds)
        let total = found.all.count(low, high, through: bound)
        let own = found.byWorkspace[excluding]?.count(low, high, through: bound) ?? 0
        return total - own
    }

    public func actionTypes(in subVertical: String) -> [String] { actionTypes[subVertical] ?? [] }
}

/// Index of the first element greater than `value` in a sorted array.
private func upperBound(_ sorted: [Int64], _ value: Int64) -> Int {
    var low = 0
    var high = sorted.count
    while low < high {
        let mid = (low + high) / 2
        if sorted[mid] <= value { low = mid + 1 } else { high = mid }
    }
    return low
}

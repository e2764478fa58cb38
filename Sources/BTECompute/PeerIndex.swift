import BTEDomain

/// Successful acts of all workspaces, indexed by (sub-vertical, action type) with sorted
/// timestamps, so each workspace asks "did another workspace succeed with X in this window?" in
/// logarithmic time. Built once per batch and shared by every workspace's history.
public struct PeerIndex: Sendable {
    struct Key: Hashable, Sendable {
        let subVertical: String
        let actionType: String
    }

    struct Entries: Sendable {
        var all: [Int64] = []
        var byWorkspace: [String: [Int64]] = [:]
    }

    private var entries: [Key: Entries] = [:]
    /// Action types seen per sub-vertical, sorted, for next-best-action.
    private var actionTypes: [String: [String]] = [:]

    public init(_ peers: [PeerSuccess]) {
        count = peers.count
        for peer in peers {
            let key = Key(subVertical: peer.subVerticalID, actionType: peer.actionType)
            entries[key, default: Entries()].all.append(peer.timestamp.microseconds)
            entries[key, default: Entries()].byWorkspace[peer.workspaceID, default: []].append(
                peer.timestamp.microseconds)
        }
        for key in entries.keys {
            entries[key]?.all.sort()
            if let workspaces = entries[key]?.byWorkspace.keys {
                for ws in workspaces { entries[key]?.byWorkspace[ws]?.sort() }
            }
        }
        var types: [String: Set<String>] = [:]
        for key in entries.keys { types[key.subVertical, default: []].insert(key.actionType) }
        actionTypes = types.mapValues { $0.sorted() }
    }

    /// Adds a success (one stored since the index was built).
    public mutating func insert(_ peer: PeerSuccess) {
        let key = Key(subVertical: peer.subVerticalID, actionType: peer.actionType)
        let time = peer.timestamp.microseconds
        var found = entries[key] ?? Entries()
        found.all.insert(time, at: upperBound(found.all, time))
        var own = found.byWorkspace[peer.workspaceID] ?? []
        own.insert(time, at: upperBound(own, time))
        found.byWorkspace[peer.workspaceID] = own
        if entries[key] == nil {
            var types = actionTypes[peer.subVerticalID] ?? []
            types.insert(peer.actionType, at: types.firstIndex { $0 > peer.actionType } ?? types.count)
            actionTypes[peer.subVerticalID] = types
        }
        entries[key] = found
        count += 1
    }

    /// Successes held.
    public private(set) var count = 0

    /// Successes with `actionType` in `subVertical` within (after, upTo] by workspaces other than `excluding`.
    public func count(subVertical: String, actionType: String, excluding: String, after: Timestamp, upTo: Timestamp)
        -> Int
    {
        guard let found = entries[Key(subVertical: subVertical, actionType: actionType)] else { return 0 }
        let total = countInRange(found.all, after.microseconds, upTo.microseconds)
        let own = found.byWorkspace[excluding].map { countInRange($0, after.microseconds, upTo.microseconds) } ?? 0
        return total - own
    }

    public func actionTypes(in subVertical: String) -> [String] { actionTypes[subVertical] ?? [] }

    /// Values v with low < v <= high in a sorted array.
    private func countInRange(_ sorted: [Int64], _ low: Int64, _ high: Int64) -> Int {
        upperBound(sorted, high) - upperBound(sorted, low)
    }

    /// Index of the first element greater than `value`.
    private func upperBound(_ sorted: [Int64], _ value: Int64) -> Int {
        var low = 0, high = sorted.count
        while low < high {
            let mid = (low + high) / 2
            if sorted[mid] <= value { low = mid + 1 } else { high = mid }
        }
        return low
    }
}

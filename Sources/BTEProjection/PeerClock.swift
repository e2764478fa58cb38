import BTEStore

/// The order of successes against the rows that count them, from the success commits of the
/// ingest group (migration 035). Each commit says what the group had stored of every partition
/// when it committed, and these only grow from one commit to the next: a row at offset o of a
/// partition was stored before commit c exactly when o < c's offset there.
struct PeerClock {
    private var ids: [Int64] = []
    private var baselines: Set<Int64> = []
    /// Per partition, the commits' stored offsets, aligned with `ids` (0 before a partition had any).
    private var next: [PartitionKey: [Int64]] = [:]

    /// The newest commit read.
    var newest: Int64 { ids.last ?? 0 }

    mutating func append(_ commits: [SuccessCommit]) {
        for commit in commits where commit.id > newest {
            for key in commit.next.keys where next[key] == nil {
                next[key] = Array(repeating: 0, count: ids.count)
            }
            for key in next.keys {
                // A partition missing from a later commit keeps what it had (offsets never shrink).
                let value = commit.next[key] ?? next[key]?.last ?? 0
                next[key]?.append(value)
            }
            ids.append(commit.id)
            if commit.baseline { baselines.insert(commit.id) }
        }
    }

    /// The order key of a success stored at `position`: the first commit whose offset passed it
    /// (its own). 0 for one stored before the order began, which every row counts.
    func order(ofSuccessAt position: LogPosition) -> Int64 {
        guard let offsets = next[PartitionKey(topic: position.topic, partition: position.partition)] else { return 0 }
        let index = firstGreater(offsets, position.offset)
        guard index < ids.count, !baselines.contains(ids[index]) else { return 0 }
        return ids[index]
    }

    /// The bound of a row stored at `position`: the last commit before it was stored (0: none).
    /// It counts exactly the successes whose order key is at most this.
    func bound(ofRowAt position: LogPosition) -> Int64 {
        guard let offsets = next[PartitionKey(topic: position.topic, partition: position.partition)] else {
            return newest
        }
        let index = firstGreater(offsets, position.offset)
        return index == 0 ? 0 : ids[index - 1]
    }

    /// Index of the first value greater than `value` in a non-decreasing array.
    private func firstGreater(_ values: [Int64], _ value: Int64) -> Int {
        var low = 0
        var high = values.count
        while low < high {
            let mid = (low + high) / 2
            if values[mid] <= value { low = mid + 1 } else { high = mid }
        }
        return low
    }
}

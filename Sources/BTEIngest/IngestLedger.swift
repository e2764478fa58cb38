import BTEStore
import Kafka

/// Where ingest stands in each assigned partition, as pure bookkeeping: the worker reports what
/// the consumer and the writers did, and the ledger answers what to accept, what each batch
/// must find stored, and where a partition restarts. No I/O, so every interleaving of
/// rebalances and writes can be tested without servers.
///
/// The rule that keeps nothing skipped: a partition's messages that were accepted but not yet
/// handed to a writer are dropped the moment the partition is revoked or restarted, together
/// with its position, so whatever is accepted afterwards starts where PostgreSQL says.
struct IngestLedger {
    struct Partition: Equatable {
        /// The `next_offset` believed stored in PostgreSQL; nil: no row yet.
        var stored: Int64?
        /// The next offset to accept; older messages are re-deliveries of what was accepted.
        var position: Int64?
        /// False while the start offset is unknown (PostgreSQL could not be read): the
        /// partition is held paused until a rewind.
        var started: Bool
        /// Changes on every assignment, so a write begun under an earlier one can't move it.
        var epoch: Int
    }

    /// A batch handed to a writer and not yet finished.
    struct Flight {
        let id: Int
        let lane: Int
        let next: [KafkaTopicPartition: (epoch: Int, offset: Int64)]
    }

    private(set) var partitions: [KafkaTopicPartition: Partition] = [:]
    /// Accepted messages not yet handed to a writer, in arrival order.
    private(set) var collected: [KafkaMessage] = [] {
        didSet { if collected.isEmpty { collectedBytes = 0 } }
    }
    /// Key and value bytes of `collected`: batches are bounded in bytes as well as messages.
    private(set) var collectedBytes = 0
    private(set) var flights: [Flight] = []
    /// Every partition must restart from PostgreSQL before more is written: a write failed, or
    /// start offsets could not be read.
    private(set) var needsRewind = false
    private var epochs = 0
    private var flightIDs = 0

    var assigned: [KafkaTopicPartition] { partitions.keys.sorted() }

    // MARK: Rebalances

    /// The group assigned `newPartitions`; they accept nothing until ``started(_:)``.
    mutating func assigned(_ newPartitions: [KafkaTopicPartition]) {
        for tp in newPartitions {
            epochs += 1
            partitions[tp] = Partition(stored: nil, position: nil, started: false, epoch: epochs)
        }
        drop(Set(newPartitions))
    }

    /// Start offsets read from PostgreSQL (nil: no row). Returns where the consumer starts each.
    mutating func started(_ stored: [KafkaTopicPartition: Int64?]) -> [KafkaTopicPartitionOffset] {
        var offsets: [KafkaTopicPartitionOffset] = []
        for tp in stored.keys.sorted() where partitions[tp] != nil {
            let next = stored[tp] ?? nil
            partitions[tp]?.stored = next
            partitions[tp]?.position = next
            partitions[tp]?.started = true
            offsets.append(KafkaTopicPartitionOffset(tp, offset: next.map { .exactly($0) } ?? .beginning))
        }
        drop(Set(stored.keys))
        if partitions.values.allSatisfy(\.started) { needsRewind = false }
        return offsets
    }

    /// Start offsets could not be read, or writing failed: every partition restarts from
    /// PostgreSQL before anything else is accepted.
    mutating func requireRewind() {
        needsRewind = true
        // What was accepted may sit behind a batch that was not written: handing it to a writer
        // would pass the fence (PostgreSQL still holds the older offset) and leave a gap.
        collected = []
    }

    /// The group took `lost` away. Call after the writes in flight have finished, so their
    /// progress is booked first; a write still running can't move the partition afterwards.
    /// Returns how many accepted messages were dropped (they will be read again by the new owner).
    @discardableResult
    mutating func revoked(_ lost: [KafkaTopicPartition]) -> Int {
        for tp in lost { partitions[tp] = nil }
        return drop(Set(lost))
    }

    /// Partitions to restart from PostgreSQL: all assigned ones. What was accepted is dropped.
    mutating func rewindTargets() -> [KafkaTopicPartition] {
        collected = []
        for tp in partitions.keys { partitions[tp]?.position = nil }
        return assigned
    }

    // MARK: Messages and batches

    /// Whether `message` belongs in the next batch: its partition is ours and started, and it
    /// is not older than what was already accepted.
    mutating func accept(_ message: KafkaMessage) -> Bool {
        guard !needsRewind, let partition = partitions[message.topicPartition], partition.started else { return false }
        if let position = partition.position, message.offset < position { return false }
        partitions[message.topicPartition]?.position = message.offset + 1
        collected.append(message)
        collectedBytes += (message.value?.count ?? 0) + (message.key?.count ?? 0)
        return true
    }

    /// The accepted messages, handed over for writing; none while a rewind is due.
    mutating func takeBatch() -> [KafkaMessage] {
        defer { collected = [] }
        return needsRewind ? [] : collected
    }

    /// Registers `messages` as one writer's batch. Each partition's batch expects what the
    /// lane's newest earlier batch of it leaves stored, else what PostgreSQL holds; if an earlier
    /// batch fails, later ones fail their fence and nothing past the gap is written.
    mutating func dispatch(_ messages: [KafkaMessage], lane: Int) -> (id: Int, progress: [PartitionProgress]) {
        var next: [KafkaTopicPartition: (epoch: Int, offset: Int64)] = [:]
        for message in messages {
            let tp = message.topicPartition
            guard let partition = partitions[tp] else { continue }
            next[tp] = (partition.epoch, max(next[tp]?.offset ?? 0, message.offset + 1))
        }
        let progress = next.keys.sorted().map { tp in
            let epoch = next[tp]?.epoch
            let pending = flights.last { $0.lane == lane && $0.next[tp]?.epoch == epoch }?.next[tp]
            let expected = pending?.offset ?? partitions[tp]?.stored
            return PartitionProgress(
                topic: tp.topic, partition: tp.partition, expectedStored: expected, next: next[tp]?.offset ?? 0)
        }
        flightIDs += 1
        flights.append(Flight(id: flightIDs, lane: lane, next: next))
        return (flightIDs, progress)
    }

    /// A writer finished batch `id`. Success moves the stored offsets of partitions still held
    /// under the same assignment; failure means positions ran ahead of PostgreSQL, so every
    /// partition restarts from it.
    mutating func finished(_ id: Int, succeeded: Bool) {
        guard let index = flights.firstIndex(where: { $0.id == id }) else { return }
        let flight = flights.remove(at: index)
        guard succeeded else {
            requireRewind()
            return
        }
        for (tp, entry) in flight.next where partitions[tp]?.epoch == entry.epoch {
            partitions[tp]?.stored = entry.offset
        }
    }

    /// Whether every assigned partition has been read up to its high watermark (nil: unknown).
    func caughtUp(high: (KafkaTopicPartition) -> (low: Int64?, high: Int64)?) -> Bool {
        guard !partitions.isEmpty, !needsRewind, flights.isEmpty, collected.isEmpty else { return false }
        return partitions.allSatisfy { tp, partition in
            guard partition.started, let marks = high(tp) else { return false }
            return (partition.position ?? partition.stored ?? marks.low ?? 0) >= marks.high
        }
    }

    @discardableResult
    private mutating func drop(_ lost: Set<KafkaTopicPartition>) -> Int {
        guard !lost.isEmpty else { return 0 }
        let before = collected.count
        collected.removeAll { lost.contains($0.topicPartition) }
        collectedBytes = collected.reduce(0) { $0 + ($1.value?.count ?? 0) + ($1.key?.count ?? 0) }
        return before - collected.count
    }
}

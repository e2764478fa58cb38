import BTEStore
import Kafka
import Testing

@testable import BTEIngest

private let p0 = KafkaTopicPartition(topic: "t", partition: 0)
private let p1 = KafkaTopicPartition(topic: "t", partition: 1)

private func message(_ tp: KafkaTopicPartition, _ offset: Int64) -> KafkaMessage {
    KafkaMessage(topic: tp.topic, partition: tp.partition, offset: offset, value: [], key: nil)
}

/// One member's ledger against a simulated world: partitions of `end` messages each, a
/// consumer that fetches from where it was told to start, and a PostgreSQL that applies the
/// fence and records which offsets were stored. Batches go to one writer queue, finished in order.
private struct World {
    var ledger = IngestLedger()
    var end: [KafkaTopicPartition: Int64]
    /// The consumer's fetch position per assigned partition.
    var fetch: [KafkaTopicPartition: Int64] = [:]
    /// `bte.ingest_offsets`.
    var offsets: [KafkaTopicPartition: Int64] = [:]
    /// Offsets appended to the log per partition, in order.
    var stored: [KafkaTopicPartition: [Int64]] = [:]
    var inFlight: [(id: Int, messages: [KafkaMessage], progress: [PartitionProgress])] = []

    init(_ end: [KafkaTopicPartition: Int64]) { self.end = end }

    mutating func assign(_ tps: [KafkaTopicPartition]) {
        ledger.assigned(tps)
        var known: [KafkaTopicPartition: Int64?] = [:]
        for tp in tps { known[tp] = .some(offsets[tp]) }
        start(ledger.started(known))
    }

    mutating func start(_ starts: [KafkaTopicPartitionOffset]) {
        for start in starts {
            switch start.offset {
            case .exactly(let n): fetch[start.topicPartition] = n
            default: fetch[start.topicPartition] = 0
            }
        }
    }

    /// As the worker does: writes in flight finish before the partitions go.
    mutating func revoke(_ tps: [KafkaTopicPartition]) {
        drain()
        ledger.revoked(tps)
        for tp in tps { fetch[tp] = nil }
    }

    /// The consumer hands out the next message of the first partition that has one.
    mutating func poll() {
        for tp in fetch.keys.sorted() {
            guard let next = fetch[tp], next < end[tp] ?? 0 else { continue }
            fetch[tp] = next + 1
            _ = ledger.accept(message(tp, next))
            return
        }
    }

    mutating func write() {
        let batch = ledger.takeBatch()
        guard !batch.isEmpty else { return }
        let (id, progress) = ledger.dispatch(batch, lane: 0)
        inFlight.append((id, batch, progress))
    }

    /// The oldest batch commits if its fence holds (and the server is up), else nothing of it.
    mutating func finishOldest(serverUp: Bool = true) {
        guard !inFlight.isEmpty else { return }
        let flight = inFlight.removeFirst()
        let fenceHolds = flight.progress.allSatisfy {
            offsets[KafkaTopicPartition(topic: $0.topic, partition: $0.partition)] == $0.expectedStored
        }
        guard serverUp, fenceHolds else {
            ledger.finished(flight.id, succeeded: false)
            return
        }
        for message in flight.messages { stored[message.topicPartition, default: []].append(message.offset) }
        for entry in flight.progress {
            offsets[KafkaTopicPartition(topic: entry.topic, partition: entry.partition)] = entry.next
        }
        ledger.finished(flight.id, succeeded: true)
    }

    mutating func drain() {
        while !inFlight.isEmpty { finishOldest() }
    }

    mutating func rewindIfNeeded() {
        guard ledger.needsRewind else { return }
        drain()
        let targets = ledger.rewindTargets()
        var known: [KafkaTopicPartition: Int64?] = [:]
        for tp in targets { known[tp] = .some(offsets[tp]) }
        start(ledger.started(known))
    }

    /// Runs the worker's loop until every assigned partition is stored to its end.
    mutating func finish() {
        for _ in 0..<1_000 {
            rewindIfNeeded()
            for _ in 0..<3 { poll() }
            write()
            drain()
            if !ledger.needsRewind, fetch.allSatisfy({ offsets[$0.key] == end[$0.key] }) { return }
        }
    }

    /// What must hold at every step: the stored offsets never pass what was appended, and
    /// nothing is appended twice.
    func checkInvariants(_ context: String) {
        for (tp, next) in offsets {
            #expect(stored[tp] ?? [] == Array(0..<next), "\(tp) at \(next) holds \(stored[tp] ?? []) (\(context))")
        }
    }
}

@Suite struct IngestLedgerTests {
    /// The rebalance that used to skip events: a partition revoked and re-assigned while its
    /// messages sit in the batch being collected. What was collected goes; what arrives after
    /// the re-assignment, from the stored offset, stays.
    @Test func revokeAndReassignWithinOneBatchKeepsWhatArrivesAfter() {
        var ledger = IngestLedger()
        ledger.assigned([p0])
        let r1 = ledger.started([p0: 5])
        #expect(r1 == [KafkaTopicPartitionOffset(p0, offset: .exactly(5))])
        let r2 = ledger.accept(message(p0, 5))
        #expect(r2)
        let r3 = ledger.accept(message(p0, 6))
        #expect(r3)
        let r4 = ledger.revoked([p0])
        #expect(r4 == 2)
        ledger.assigned([p0])
        _ = ledger.started([p0: 5])
        let r5 = ledger.accept(message(p1, 0))
        #expect(!r5)  // not ours
        let r6 = ledger.accept(message(p0, 5))
        #expect(r6)
        let r7 = ledger.accept(message(p0, 6))
        #expect(r7)
        let r8 = ledger.accept(message(p0, 7))
        #expect(r8)
        let r9 = ledger.accept(message(p0, 6))
        #expect(!r9)  // a re-delivery of what is already collected
        let batch = ledger.takeBatch()
        #expect(batch.map(\.offset) == [5, 6, 7])
        let (_, progress) = ledger.dispatch(batch, lane: 0)
        #expect(progress.map(\.expectedStored) == [5])
        #expect(progress.map(\.next) == [8])
    }

    /// Batches queued on one writer chain their fences; a failed one makes the next fail its
    /// fence and the ledger rewind.
    @Test func queuedBatchesChainTheirFencesAndAFailureRewinds() {
        var ledger = IngestLedger()
        ledger.assigned([p0, p1])
        _ = ledger.started([p0: nil, p1: 10])
        for offset in [0, 1] as [Int64] { _ = ledger.accept(message(p0, offset)) }
        _ = ledger.accept(message(p1, 10))
        let first = ledger.dispatch(ledger.takeBatch(), lane: 0)
        #expect(first.progress.map(\.expectedStored) == [nil, 10])
        #expect(first.progress.map(\.next) == [2, 11])
        _ = ledger.accept(message(p0, 2))
        let second = ledger.dispatch(ledger.takeBatch(), lane: 0)
        #expect(second.progress.map(\.expectedStored) == [2])
        #expect(second.progress.map(\.next) == [3])
        ledger.finished(first.id, succeeded: false)
        #expect(ledger.needsRewind)
        let r10 = ledger.accept(message(p0, 3))
        #expect(!r10)  // nothing is accepted until the rewind
        ledger.finished(second.id, succeeded: false)
        #expect(ledger.rewindTargets() == [p0, p1])
        #expect(
            ledger.started([p0: nil, p1: 10]) == [
                KafkaTopicPartitionOffset(p0, offset: .beginning), KafkaTopicPartitionOffset(p1, offset: .exactly(10)),
            ])
        #expect(!ledger.needsRewind)
        #expect(ledger.partitions[p0]?.stored == nil)
    }

    /// A write that finishes after its partition was revoked and assigned again (the drain
    /// failed) books nothing: the new assignment started from PostgreSQL.
    @Test func aWriteOfAnEarlierAssignmentDoesNotMoveTheNewOne() {
        var ledger = IngestLedger()
        ledger.assigned([p0])
        _ = ledger.started([p0: 0])
        _ = ledger.accept(message(p0, 0))
        let flight = ledger.dispatch(ledger.takeBatch(), lane: 0)
        ledger.revoked([p0])
        ledger.assigned([p0])
        _ = ledger.started([p0: 0])
        ledger.finished(flight.id, succeeded: true)
        #expect(ledger.partitions[p0]?.stored == 0)
    }

    /// Partitions whose start offsets could not be read accept nothing until the rewind.
    @Test func heldPartitionsAcceptNothing() {
        var ledger = IngestLedger()
        ledger.assigned([p0])
        ledger.requireRewind()
        let r11 = ledger.accept(message(p0, 0))
        #expect(!r11)
        #expect(!ledger.caughtUp { _ in (low: 0, high: 0) })
        _ = ledger.started([p0: nil])
        #expect(ledger.caughtUp { _ in (low: 0, high: 0) })
        #expect(!ledger.caughtUp { _ in (low: 0, high: 1) })
    }

    /// Every point of a batch's life (collecting, collected, dispatched, one of two queued
    /// batches finished), with each disturbance injected there: revoke and re-assign, revoke
    /// and a later assign, another member writing meanwhile, a failed write, a lost start.
    /// Afterwards every message of both partitions is stored exactly once, and at no step do
    /// stored offsets pass what was appended.
    @Test func everyDisturbanceAtEveryPointStoresEachMessageOnce() {
        enum Step: CaseIterable { case poll, write, finishOne }
        enum Disturbance: CaseIterable { case reassign, revokeThenAssign, otherMemberWrites, failedWrite, startUnknown }
        let schedule: [Step] = [
            .poll, .poll, .write, .poll, .poll, .poll, .write, .poll, .finishOne, .poll, .write, .finishOne, .finishOne,
        ]
        var runs = 0
        for disturbance in Disturbance.allCases {
            for point in 0...schedule.count {
                var world = World([p0: 6, p1: 4])
                world.assign([p0, p1])
                var pendingAssign = false
                for (index, step) in schedule.enumerated() {
                    if index == point {
                        switch disturbance {
                        case .reassign:
                            world.revoke([p0])
                            world.assign([p0])
                        case .revokeThenAssign:
                            world.revoke([p0])
                            pendingAssign = true
                        case .otherMemberWrites:
                            // Another member owned p0 for a moment and stored up to offset 3.
                            world.revoke([p0])
                            let next = max(world.offsets[p0] ?? 0, 3)
                            world.stored[p0] = Array(0..<next)
                            world.offsets[p0] = next
                            world.assign([p0])
                        case .failedWrite:
                            world.finishOldest(serverUp: false)
                        case .startUnknown:
                            world.revoke([p1])
                            world.ledger.assigned([p1])
                            world.ledger.requireRewind()
                            world.fetch[p1] = 0
                        }
                    }
                    switch step {
                    case .poll: world.poll()
                    case .write: world.write()
                    case .finishOne: world.finishOldest()
                    }
                    world.rewindIfNeeded()
                    world.checkInvariants("\(disturbance) at \(point), step \(index)")
                    if pendingAssign, index == point + 2 {
                        world.assign([p0])
                        pendingAssign = false
                    }
                }
                if pendingAssign { world.assign([p0]) }
                world.finish()
                world.checkInvariants("\(disturbance) at \(point), end")
                #expect(world.stored[p0] == [0, 1, 2, 3, 4, 5], "\(disturbance) at \(point)")
                #expect(world.stored[p1] == [0, 1, 2, 3], "\(disturbance) at \(point)")
                runs += 1
            }
        }
        #expect(runs == 5 * 14)
    }

    /// Batches are bounded in bytes: the ledger counts what it collected and forgets what a
    /// revocation drops.
    @Test func collectedBytesFollowAcceptsAndDrops() {
        var ledger = IngestLedger()
        ledger.assigned([p0, p1])
        _ = ledger.started([p0: 0, p1: 0])
        func sized(_ tp: KafkaTopicPartition, _ offset: Int64, _ bytes: Int) -> KafkaMessage {
            KafkaMessage(
                topic: tp.topic, partition: tp.partition, offset: offset, value: [UInt8](repeating: 1, count: bytes),
                key: [1, 2])
        }
        _ = ledger.accept(sized(p0, 0, 100))
        _ = ledger.accept(sized(p1, 0, 1_000))
        #expect(ledger.collectedBytes == 102 + 1_002)
        ledger.revoked([p1])
        #expect(ledger.collectedBytes == 102)
        _ = ledger.takeBatch()
        #expect(ledger.collectedBytes == 0)
    }
}

import BTEStore
import Testing

@testable import BTEProjection

/// The clock against a model of ingest's transactions: a row counts a success exactly when the
/// success's transaction committed before the row's.
struct PeerClockTests {
    @Test func aRowCountsASuccessExactlyWhenItsTransactionCommittedFirst() {
        var state: UInt64 = 0xC10C_2026
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        for round in 0..<40 {
            let partitions = (0..<Int32(1 + next(4))).map { PartitionKey(topic: "t\($0 % 2)", partition: $0) }
            var stored: [PartitionKey: Int64] = [:]
            // (transaction, partition, offset, may succeed) of every row, in commit order.
            var rows: [(transaction: Int, at: LogPosition, success: Bool)] = []
            var commits: [SuccessCommit] = []
            var id: Int64 = 100
            // Rows stored before the order began, under a baseline.
            for partition in partitions where next(2) == 0 {
                for _ in 0..<next(3) {
                    let offset = stored[partition, default: 0]
                    rows.append(
                        (
                            -1, LogPosition(topic: partition.topic, partition: partition.partition, offset: offset),
                            next(2) == 0
                        ))
                    stored[partition] = offset + 1
                }
            }
            id += 1
            commits.append(SuccessCommit(id: id, baseline: true, next: stored))
            for transaction in 0..<(5 + next(30)) {
                var hasSuccess = false
                for partition in partitions where next(2) == 0 {
                    for _ in 0..<(1 + next(3)) {
                        let offset = stored[partition, default: 0]
                        let success = next(4) == 0
                        hasSuccess = hasSuccess || success
                        rows.append(
                            (
                                transaction,
                                LogPosition(topic: partition.topic, partition: partition.partition, offset: offset),
                                success
                            ))
                        stored[partition] = offset + 1
                    }
                }
                if hasSuccess {
                    id += 1 + Int64(next(3))  // a sequence may skip ids (a rolled-back transaction)
                    commits.append(SuccessCommit(id: id, baseline: false, next: stored))
                }
            }
            var clock = PeerClock()
            // Read in pieces, as batches do.
            var start = 0
            while start < commits.count {
                let end = min(start + 1 + next(3), commits.count)
                clock.append(Array(commits[start..<end]))
                start = end
            }
            for success in rows where success.success {
                for row in rows {
                    // Rows from before the order began count every success from then.
                    let expected = success.transaction == -1 || success.transaction < row.transaction
                    let counted = clock.order(ofSuccessAt: success.at) <= clock.bound(ofRowAt: row.at)
                    #expect(counted == expected, "round \(round): \(success) for \(row)")
                }
            }
        }
    }
}

import BTEDomain
import BTEStore
import BTETestSupport
import Foundation
import Postgres
import Testing

/// Two writers (two group members, or two lanes) appending overlapping interaction event ids at
/// the same moment: the id registry keeps every id stored once and still tells re-deliveries
/// from conflicts, whichever transaction wins. A writer that loses a race gets a retriable
/// error and retries its batch, as the worker does.
@Suite(.serialized) struct ConcurrentWriterTests {
    static func record(_ n: Int, duration: Int, offset: Int64, partition: Int32) -> IncomingRecord? {
        let id = fixtureUUID(n)
        // Ids in two months: the registry, not a partition's primary key, must catch them.
        let month = n % 2 == 0 ? "01" : "02"
        let json =
            #"{"event_id":"\#(id)","timestamp":"2026-\#(month)-15T10:00:00Z","event_type":"tap","#
            + #""user_id":"u\#(n % 7)","session_id":"s1","duration_ms":\#(duration)}"#
        guard
            case .success(let valid) = RecordValidator().validate(
                kind: .interaction, key: Array("u".utf8), value: Array(json.utf8))
        else { return nil }
        return IncomingRecord(
            record: valid, source: SourcePosition(topic: "t", partition: partition, offset: offset), key: nil,
            value: nil)
    }

    @Test func overlappingIdsAreStoredOnceAndConflictsFound() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        // Writer A (partition 0): ids 0..<1500. Writer B (partition 1): ids 1000..<2500, where
        // 1000..<1250 repeat A's content (re-deliveries) and 1250..<1500 differ (conflicts).
        var a = IngestBatch()
        a.records = (0..<1500).compactMap { Self.record($0, duration: 10, offset: Int64($0), partition: 0) }
        a.progress = [PartitionProgress(topic: "t", partition: 0, expectedStored: nil, next: 1500)]
        var b = IngestBatch()
        b.records = (1000..<2500).compactMap { n in
            Self.record(n, duration: (1250..<1500).contains(n) ? 99 : 10, offset: Int64(n - 1000), partition: 1)
        }
        b.progress = [PartitionProgress(topic: "t", partition: 1, expectedStored: nil, next: 1500)]
        #expect(a.records.count == 1500 && b.records.count == 1500)

        let outcomes = Outcomes()
        let group = DispatchGroup()
        for (name, batch) in [("a", a), ("b", b)] {
            let url = db.ingestURL
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                do {
                    let store = try IngestStore(url: url, group: "g")
                    try store.ensurePartitions(for: batch.records)
                    var attempts = 0
                    while true {
                        attempts += 1
                        do {
                            outcomes.set(name, try store.commit(batch) { _ in }, attempts: attempts)
                            return
                        } catch let error as StoreError where error.isRetriable && attempts < 5 {
                            continue
                        }
                    }
                } catch {
                    outcomes.fail("\(name): \(error)")
                }
            }
        }
        #expect(group.wait(timeout: .now() + 60) == .success)
        #expect(outcomes.failures.isEmpty, "\(outcomes.failures)")
        let results = outcomes.results.values
        // 2500 distinct ids; of the 500 shared ones, whichever writer came second found 250
        // re-deliveries and 250 conflicts.
        #expect(results.reduce(0) { $0 + ($1.stored[.interactionEvents] ?? 0) } == 2_500)
        #expect(results.reduce(0) { $0 + ($1.duplicates[.interactionEvents] ?? 0) } == 250)
        #expect(
            results.reduce(0) { $0 + $1.rejects.filter { $0.rejection.code == .conflictingDuplicate }.count } == 250)
        #expect(try db.count("SELECT count(*) FROM core.interaction_events") == 2_500)
        #expect(try db.count("SELECT count(DISTINCT event_id) FROM core.interaction_events") == 2_500)
        #expect(try db.count("SELECT count(*) FROM bte.interaction_event_ids") == 2_500)
        #expect(
            try db.count("SELECT count(*) FROM bte.rejected_events WHERE error_code = 'conflicting_duplicate'") == 250)
        #expect(try db.count("SELECT count(*) FROM bte.ingest_offsets WHERE next_offset = 1500") == 2)
    }
}

private final class Outcomes: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var results: [String: IngestOutcome] = [:]
    private(set) var failures: [String] = []
    func set(_ name: String, _ outcome: IngestOutcome, attempts: Int) {
        lock.lock()
        results[name] = outcome
        lock.unlock()
    }
    func fail(_ message: String) {
        lock.lock()
        failures.append(message)
        lock.unlock()
    }
}

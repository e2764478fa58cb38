import BTEDomain
import BTEStore
import BTETestSupport
import Foundation
import Postgres
import Testing

private struct FixtureInvalid: Error { let n: Int }

/// The appender against a real server: what it does when the database, not the data, is wrong.
@Suite(.serialized) struct IngestStoreTests {
    static func interaction(_ n: Int, timestamp: String, offset: Int64, partition: Int32 = 0) throws -> IncomingRecord {
        let json = #"{"event_id":"\#(fixtureUUID(n))","timestamp":"\#(timestamp)","event_type":"tap","user_id":"u","session_id":"s"}"#
        guard case .success(let valid) = RecordValidator().validate(kind: .interaction, key: Array("u".utf8), value: Array(json.utf8)) else {
            throw FixtureInvalid(n: n)
        }
        return IncomingRecord(record: valid, source: SourcePosition(topic: "t", partition: partition, offset: offset), key: Array("u".utf8), value: Array(json.utf8))
    }

    /// A month partition detached after the store ensured it: the row fits no partition. That
    /// is the database's layout, not the event, so the batch fails retriably and nothing is
    /// rejected; once the partition is gone for good, the retry creates it again.
    @Test func missingPartitionPausesInsteadOfRejecting() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        var batch = IngestBatch()
        batch.records = [
            try Self.interaction(1, timestamp: "2026-03-10T10:00:00Z", offset: 0),
            try Self.interaction(2, timestamp: "2026-04-10T10:00:00Z", offset: 1),
        ]
        batch.progress = [PartitionProgress(topic: "t", partition: 0, expectedStored: nil, next: 2)]
        let store = try IngestStore(url: db.ingestURL, group: "g")
        try store.ensurePartitions(for: batch.records)
        let admin = try db.admin()
        try admin.execute("ALTER TABLE core.interaction_events DETACH PARTITION core.interaction_events_2026_03")

        var published: [RejectedMessage] = []
        let error = #expect(throws: PostgresError.self) { try store.commit(batch) { published += $0 } }
        #expect(error?.sqlState == "23514")
        #expect(error?.isRetriable == true)
        #expect(error?.isDataError == false)
        #expect(published.isEmpty)
        #expect(try db.count("SELECT count(*) FROM bte.rejected_events") == 0)
        #expect(try db.count("SELECT count(*) FROM core.interaction_events") == 0)
        #expect(try db.count("SELECT count(*) FROM bte.ingest_offsets") == 0)

        try admin.execute("DROP TABLE core.interaction_events_2026_03")
        let outcome = try store.commit(batch) { published += $0 }
        #expect(outcome.stored[.interactionEvents] == 2)
        #expect(outcome.rejects.isEmpty)
        #expect(try db.count("SELECT count(*) FROM core.interaction_events_2026_03") == 1)
        #expect(try db.count("SELECT next_offset FROM bte.ingest_offsets WHERE consumer_group = 'g'") == 2)
    }
}

import BTEDomain
import BTETestSupport
import Foundation
import Postgres
import Testing

@testable import BTEStore

private struct FixtureInvalid: Error { let n: Int }

/// The appender against a real server: what it does when the database, not the data, is wrong.
@Suite(.serialized) struct IngestStoreTests {
    static func interaction(_ n: Int, timestamp: String, offset: Int64, partition: Int32 = 0) throws -> IncomingRecord {
        let json =
            #"{"event_id":"\#(fixtureUUID(n))","timestamp":"\#(timestamp)","#
            + #""event_type":"tap","user_id":"u","session_id":"s"}"#
        guard
            case .success(let valid) = RecordValidator().validate(
                kind: .interaction, key: Array("u".utf8), value: Array(json.utf8))
        else {
            throw FixtureInvalid(n: n)
        }
        return IncomingRecord(
            record: valid, source: SourcePosition(topic: "t", partition: partition, offset: offset),
            key: Array("u".utf8), value: Array(json.utf8))
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

    /// Ingest writers give up on a statement after a minute (a stuck lock wait pauses and
    /// retries instead of holding the group); the reader's long history queries get ten.
    @Test func storesSetTheirStatementTimeouts() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        #expect(
            try IngestStore(url: db.ingestURL, group: "g").connection.execute("SHOW statement_timeout").rows == [
                ["1min"]
            ])
        #expect(try HistoryReader(url: db.readerURL).connection.execute("SHOW statement_timeout").rows == [["10min"]])
        let short = try IngestStore(url: db.ingestURL, group: "g", statementTimeoutMilliseconds: 250)
        #expect(try short.connection.execute("SHOW statement_timeout").rows == [["250ms"]])
        #expect(try short.connection.execute("SHOW tcp_keepalives_idle").rows == [["30"]])
    }

    /// Two members both believe a partition has no stored offset yet. The second must not
    /// write over the first's batch: it waits for it, then sees the offset moved and is fenced.
    @Test func firstBatchOfAPartitionIsFenced() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        var a = IngestBatch()
        a.records = try (1...5).map {
            try Self.interaction($0, timestamp: "2026-05-0\($0)T10:00:00Z", offset: Int64($0 - 1))
        }
        a.progress = [PartitionProgress(topic: "t", partition: 0, expectedStored: nil, next: 5)]
        var b = IngestBatch()
        b.records = try (11...13).map {
            try Self.interaction($0, timestamp: "2026-05-1\($0 - 10)T10:00:00Z", offset: Int64($0 - 11))
        }
        b.progress = [PartitionProgress(topic: "t", partition: 0, expectedStored: nil, next: 3)]
        let storeA = try IngestStore(url: db.ingestURL, group: "g")
        let storeB = try IngestStore(url: db.ingestURL, group: "g")
        try storeA.ensurePartitions(for: a.records)
        try storeB.ensurePartitions(for: b.records)

        let second = Locked<Result<IngestOutcome, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let job = Locked((storeB, b))
        _ = try storeA.commit(a) { _ in
            Thread.detachNewThread {
                let (store, batch) = job.value
                second.value = Result { try store.commit(batch) { _ in } }
                done.signal()
            }
            Thread.sleep(forTimeInterval: 0.3)
        }
        #expect(done.wait(timeout: .now() + 30) == .success)
        switch second.value {
        case .failure(let error as StoreError)?:
            #expect(error.code == .offsetFence, "\(error)")
        case let other:
            Issue.record("the second writer was not fenced: \(String(describing: other))")
        }
        #expect(
            try db.count(
                "SELECT next_offset FROM bte.ingest_offsets "
                    + "WHERE consumer_group = 'g' AND topic = 't' AND partition = 0"
            ) == 5)
        #expect(try db.count("SELECT count(*) FROM core.interaction_events") == 5)
    }
}

/// A value shared with another thread, behind a lock.
private final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value {
        get {
            lock.lock()
            defer { lock.unlock() }
            return stored
        }
        set {
            lock.lock()
            stored = newValue
            lock.unlock()
        }
    }
}

/// Rejects decided by the store (a conflicting re-delivery, a row PostgreSQL refuses) follow the
/// intent topic's rule like the validator's: no value of the record in the message.
@Suite(.serialized) struct IntentStoreRejectMessageTests {
    static let eventID = "5ec7e7a1-0000-4000-8000-000000000001"

    static func intent(actor: String, promptVersion: String, offset: Int64) throws -> IncomingRecord {
        let json = """
            {"record_type":"intent_event","event_id":"\(eventID)","ts":"2025-12-24T08:00:00Z",\
            "session_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c002","actor_id":"\(actor)","entrypoint":"chat",\
            "utterance_hash":"\(String(repeating: "ab", count: 32))","semreg_mode":"applied","outcome":"matched",\
            "prompt_version":"\(promptVersion)"}
            """
        let topic = "x." + InputKind.intent.rawValue
        guard case .success(let valid) = RecordValidator().validate(kind: .intent, key: nil, value: Array(json.utf8))
        else {
            throw FixtureInvalid(n: Int(offset))
        }
        return IncomingRecord(
            record: valid, source: SourcePosition(topic: topic, partition: 0, offset: offset), key: nil,
            value: Array(json.utf8))
    }

    static func commit(_ record: IncomingRecord, store: IngestStore, expected: Int64?) throws -> IngestOutcome {
        var batch = IngestBatch()
        batch.records = [record]
        batch.progress = [
            PartitionProgress(
                topic: record.source.topic, partition: 0, expectedStored: expected, next: record.source.offset + 1)
        ]
        return try store.commit(batch) { _ in }
    }

    @Test func conflictingDuplicateNamesNoValue() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let store = try IngestStore(url: db.ingestURL, group: "g")
        #expect(
            try Self.commit(try Self.intent(actor: "a", promptVersion: "p-1", offset: 0), store: store, expected: nil)
                .stored[.intentEvents] == 1)
        let outcome = try Self.commit(
            try Self.intent(actor: "SECRETMARKER", promptVersion: "p-1", offset: 1), store: store, expected: 1)
        #expect(outcome.rejects.map(\.rejection.code) == [.conflictingDuplicate])
        let message = outcome.rejects.first?.rejection.message ?? ""
        #expect(!message.contains(Self.eventID) && !message.contains("SECRETMARKER"), "\(message)")
        let stored = try db.admin().execute("SELECT error_message FROM bte.rejected_events").rows.first?.first ?? nil
        #expect(stored == message)
    }

    /// A row refused by a check an operator added, whose message quotes the value: PostgreSQL's
    /// text is left out for this topic; the SQLSTATE stays.
    @Test func refusedRowNamesNoValue() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        try db.admin().executeScript(
            """
            CREATE FUNCTION agent.refuse_version() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION USING ERRCODE = '22023', \
            MESSAGE = 'prompt version ' || NEW.prompt_version || ' retired'; END $$;
            CREATE TRIGGER refuse_version BEFORE INSERT ON agent.intent_events
                FOR EACH ROW EXECUTE FUNCTION agent.refuse_version();
            """)
        let store = try IngestStore(url: db.ingestURL, group: "g")
        let outcome = try Self.commit(
            try Self.intent(actor: "a", promptVersion: "SECRETMARKER", offset: 0), store: store, expected: nil)
        #expect(outcome.rejects.map(\.rejection.code) == [.storageRejected])
        let message = outcome.rejects.first?.rejection.message ?? ""
        #expect(message.contains("22023"), "\(message)")
        #expect(!message.contains("SECRETMARKER"), "\(message)")
    }
}

/// An event id is unique within its workspace: the same id sent by two workspaces names two
/// events, in every log that has a workspace; within one workspace it is still one event.
@Suite(.serialized) struct WorkspaceScopedIDTests {
    static let a = "aaaaaaaa-0000-4000-8000-000000000001"
    static let b = "bbbbbbbb-0000-4000-8000-000000000002"
    static let id = "1d000000-0000-4000-8000-000000000001"

    static func record(_ kind: InputKind, _ json: String, offset: Int64) throws -> IncomingRecord {
        guard case .success(let valid) = RecordValidator().validate(kind: kind, key: nil, value: Array(json.utf8))
        else { throw FixtureInvalid(n: Int(offset)) }
        return IncomingRecord(
            record: valid, source: SourcePosition(topic: "t." + kind.rawValue, partition: 0, offset: offset),
            key: nil, value: Array(json.utf8))
    }

    static func records(workspace: String, note: String, offset: Int64) throws -> [IncomingRecord] {
        [
            try record(
                .business,
                #"{"record_type":"business_event","event_id":"\#(id)","timestamp":"2026-03-10T10:00:00Z","#
                    + #""event_type":"deal.created","entity_type":"deal","entity_id":"\#(id)","#
                    + #""workspace_id":"\#(workspace)","sub_vertical_id":"\#(id)","actor_user_id":"\#(id)","#
                    + #""source":"hubspot","metadata":{"note":"\#(note)"}}"#, offset: offset),
            try record(
                .business,
                #"{"record_type":"user_action","action_id":"\#(id)","timestamp":"2026-03-10T10:00:00Z","#
                    + #""actor_user_id":"\#(id)","workspace_id":"\#(workspace)","action_type":"accept","#
                    + #""metadata":{"note":"\#(note)"}}"#,
                offset: offset + 1),
            try record(
                .interaction,
                #"{"event_id":"\#(id)","timestamp":"2026-03-10T10:00:00Z","event_type":"tap","#
                    + #""user_id":"u","session_id":"s-\#(note)","workspace_id":"\#(workspace)"}"#, offset: offset),
        ]
    }

    @Test func anIDClaimedByOneWorkspaceNeverBlocksAnother() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let store = try IngestStore(url: db.ingestURL, group: "g")
        var stored: [String: Int64] = [:]
        func commit(_ records: [IncomingRecord]) throws -> IngestOutcome {
            var batch = IngestBatch()
            batch.records = records
            batch.progress = Set(records.map(\.source.topic)).sorted().map { topic in
                let last = records.filter { $0.source.topic == topic }.map(\.source.offset).max() ?? 0
                return PartitionProgress(topic: topic, partition: 0, expectedStored: stored[topic], next: last + 1)
            }
            for progress in batch.progress { stored[progress.topic] = progress.next }
            return try store.commit(batch) { _ in }
        }
        let first = try commit(try Self.records(workspace: Self.a, note: "one", offset: 0))
        #expect(first.stored == [.businessEvents: 1, .userActions: 1, .interactionEvents: 1], "\(first)")
        // Workspace B, the same ids and other content: three new events, no conflict.
        let second = try commit(try Self.records(workspace: Self.b, note: "two", offset: 2))
        #expect(second.rejects.map(\.rejection.code) == [], "\(second.rejects.map(\.rejection))")
        #expect(second.stored == [.businessEvents: 1, .userActions: 1, .interactionEvents: 1], "\(second)")
        // Within workspace A the id is still taken: other content conflicts, the same is a re-delivery.
        let third = try commit(try Self.records(workspace: Self.a, note: "three", offset: 4))
        #expect(third.rejects.map(\.rejection.code) == Array(repeating: .conflictingDuplicate, count: 3))
        let fourth = try commit(try Self.records(workspace: Self.b, note: "two", offset: 6))
        #expect(fourth.duplicates == [.businessEvents: 1, .userActions: 1, .interactionEvents: 1], "\(fourth)")
        #expect(fourth.rejects.isEmpty)
        for table in ["core.business_events", "core.user_actions", "core.interaction_events"] {
            #expect(try db.count("SELECT count(DISTINCT workspace_id) FROM \(table)") == 2, "\(table)")
        }
    }
}

extension WorkspaceScopedIDTests {
    static func business(
        _ n: Int, workspace: String, type: String, entity: String, at time: String, metadata: String
    ) throws -> IncomingRecord {
        try record(
            .business,
            #"{"record_type":"business_event","event_id":"\#(fixtureUUID(n))","timestamp":"\#(time)","#
                + #""event_type":"\#(type)","entity_type":"recommendation","entity_id":"\#(entity)","#
                + #""workspace_id":"\#(workspace)","sub_vertical_id":"\#(id)","actor_user_id":"\#(id)","#
                + #""source":"platform","metadata":\#(metadata)}"#, offset: Int64(n))
    }

    /// A recommendation given in one workspace and acted on (same entity id) in another is no
    /// peer success of either: an act pairs with its own workspace's given only.
    @Test func anActPairsWithItsOwnWorkspacesRecommendation() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let store = try IngestStore(url: db.ingestURL, group: "g")
        let entity = "e0000000-0000-4000-8000-000000000001"
        var batch = IngestBatch()
        batch.records = [
            try Self.business(
                1, workspace: Self.a, type: "recommendation.given", entity: entity, at: "2026-03-10T10:00:00Z",
                metadata: #"{"action_type":"call"}"#),
            try Self.business(
                2, workspace: Self.b, type: "recommendation.acted", entity: entity, at: "2026-03-10T11:00:00Z",
                metadata: #"{"outcome":"success"}"#),
            try Self.business(
                3, workspace: Self.a, type: "recommendation.acted", entity: entity, at: "2026-03-10T12:00:00Z",
                metadata: #"{"outcome":"success"}"#),
        ]
        batch.progress = [
            PartitionProgress(topic: "t.bte.business-events.v1", partition: 0, expectedStored: nil, next: 4)
        ]
        _ = try store.commit(batch) { _ in }
        let successes = try HistoryReader(url: db.readerURL).peerSuccesses(
            subVerticals: [Self.id], after: Timestamp(microseconds: 0),
            upTo: Timestamp(microseconds: 1_900_000_000_000_000))
        // Only A's act (12:00) pairs with A's given; B's act at 11:00 has no given of its own.
        #expect(successes.map(\.workspaceID) == [Self.a])
        #expect(successes.map(\.actionType) == ["call"])
    }
}

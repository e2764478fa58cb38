import BTEDomain
import Postgres

/// Where a message came from.
public struct SourcePosition: Hashable, Sendable, CustomStringConvertible {
    public let topic: String
    public let partition: Int32
    public let offset: Int64

    public init(topic: String, partition: Int32, offset: Int64) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
    }

    public var description: String { "\(topic)[\(partition)]@\(offset)" }
}

/// A validated record with the raw message it came from (kept in case storage rejects it).
public struct IncomingRecord: Sendable {
    public let record: ValidRecord
    public let source: SourcePosition
    public let key: [UInt8]?
    public let value: [UInt8]?
    /// The person the record is about (`ValidRecord.person`), found once: a batch asks for it
    /// at every step.
    public let person: UserKey?

    public init(record: ValidRecord, source: SourcePosition, key: [UInt8]?, value: [UInt8]?) {
        self.record = record
        self.source = source
        self.key = key
        self.value = value
        person = record.person
    }
}

/// A message that will not be stored, with its raw bytes and the reason.
public struct RejectedMessage: Sendable {
    public let source: SourcePosition
    public let key: [UInt8]?
    public let value: [UInt8]?
    public let rejection: Rejection

    /// Intent telemetry is conversational data: its rejects (a pii_violation above all) keep
    /// coordinates, code and message, never the bytes.
    public init(source: SourcePosition, key: [UInt8]?, value: [UInt8]?, rejection: Rejection) {
        self.source = source
        self.key = key
        let withheld = rejection.code == .piiViolation || source.topic.hasSuffix(InputKind.intent.rawValue)
        self.value = withheld ? nil : value
        self.rejection = rejection
    }
}

/// How far a batch moves one partition.
public struct PartitionProgress: Sendable {
    public let topic: String
    public let partition: Int32
    /// The `next_offset` this worker believes is stored (nil: none yet). If the stored value
    /// differs, another member has moved the partition and the batch is refused.
    public let expectedStored: Int64?
    public let next: Int64

    public init(topic: String, partition: Int32, expectedStored: Int64?, next: Int64) {
        self.topic = topic
        self.partition = partition
        self.expectedStored = expectedStored
        self.next = next
    }
}

/// Everything one ingest transaction writes.
public struct IngestBatch: Sendable {
    public var records: [IncomingRecord] = []
    public var rejects: [RejectedMessage] = []
    public var progress: [PartitionProgress] = []

    public init() {}
}

/// What a committed batch did.
public struct IngestOutcome: Sendable {
    public var stored: [LogTable: Int] = [:]
    public var duplicates: [LogTable: Int] = [:]
    /// Records of suppressed people, dropped: neither stored nor kept as rejects.
    public var suppressed: [LogTable: Int] = [:]
    /// Every message of the batch that was not stored: validation rejects plus those found in
    /// the transaction (conflicting duplicates, rows PostgreSQL refused).
    public var rejects: [RejectedMessage] = []
}

/// Appends batches to the logs: rows, rejects and next offsets in one transaction.
public final class IngestStore {
    let connection: PostgresConnection

    /// False once the server or network dropped the connection.
    public var isHealthy: Bool { connection.isHealthy }
    public let group: String
    private var ensuredMonths: Set<Int> = []
    /// Subjects of people stored before, valid while no erasure happened since
    /// (`erasuresSeen`); `learned` are the current transaction's, kept once it commits.
    private var subjectCache: [UserKey: Subject] = [:]
    private var learned: [UserKey: Subject] = [:]
    private var erasuresSeen: Int64?
    /// Beyond this many people the cache starts over (a person is ~150 bytes).
    static let subjectCacheLimit = 200_000

    /// A batch takes well under a second; a statement still running after this is stuck (a lock
    /// held by a vanished member, a server in trouble) and is cancelled, so the writer pauses and
    /// retries instead of holding up its partitions and the group's rebalance.
    public static let defaultStatementTimeoutMilliseconds = 60_000

    public init(
        url: String, group: String, statementTimeoutMilliseconds: Int = IngestStore.defaultStatementTimeoutMilliseconds,
        holdsGroupLock: Bool = true
    ) throws {
        connection = try PostgresConnection(
            url: url, applicationName: "bte-ingest",
            options: PostgresConnectionOptions(statementTimeoutMilliseconds: statementTimeoutMilliseconds))
        self.group = group
        // Held while this worker runs: `bte replay --execute` refuses to move the group's
        // offsets under it.
        if holdsGroupLock { try GroupLock.holdShared(group, on: connection) }
    }

    /// Stored `next_offset` per partition of `topics` for this group.
    public func storedOffsets(topics: [String]) throws -> [String: [Int32: Int64]] {
        try OffsetFence(connection: connection, group: group).stored(topics: topics)
    }

    /// Writes the batch atomically. `beforeCommit` runs inside the transaction with every
    /// reject of the batch (it publishes them to the dead-letter topic); if it throws, nothing
    /// is committed.
    public func commit(_ batch: IngestBatch, beforeCommit: ([RejectedMessage]) throws -> Void) throws -> IngestOutcome {
        do {
            return try write(batch, beforeCommit: beforeCommit)
        } catch {
            // A partition dropped since it was ensured fails the batch; the retry ensures anew.
            ensuredMonths.removeAll()
            throw error
        }
    }

    private func write(_ batch: IngestBatch, beforeCommit: ([RejectedMessage]) throws -> Void) throws -> IngestOutcome {
        try ensurePartitions(for: batch.records)
        let outcome = try connection.transaction {
            try OffsetFence(connection: connection, group: group).check(batch.progress)
            var outcome = IngestOutcome()
            outcome.rejects = batch.rejects
            let people = batch.records.map(\.person)
            try holdPeople(people.compactMap { $0 })
            let suppressed = try suppressedPeople(people.compactMap { $0 })
            var byTable: [LogTable: [IncomingRecord]] = [:]
            for (incoming, person) in zip(batch.records, people) {
                if let person, suppressed.contains(person) {
                    outcome.suppressed[incoming.record.table, default: 0] += 1
                    continue
                }
                byTable[incoming.record.table, default: []].append(incoming)
            }
            for table in byTable.keys.sorted() {
                let records = byTable[table] ?? []
                let appended =
                    table == .interactionEvents ? try appendInteractions(records) : try append(table: table, records)
                outcome.stored[table] = appended.stored
                outcome.duplicates[table] = appended.duplicates
                outcome.rejects += appended.conflicts + appended.refused
            }
            outcome.rejects = try withoutSuppressedPayloads(outcome.rejects)
            try insertRejects(outcome.rejects)
            try OffsetFence(connection: connection, group: group).save(batch.progress, notify: true)
            try beforeCommit(outcome.rejects)
            try PeerOrder(connection: connection, group: group).stamp(byTable)
            return outcome
        }
        keepLearnedSubjects()
        return outcome
    }

    /// Rejects whose payload names a suppressed person (a JSON object with their workspace and
    /// user or actor id) keep their code, message and coordinates, not the payload: a refused
    /// record of theirs must not store what a valid one wouldn't.
    func withoutSuppressedPayloads(_ rejects: [RejectedMessage]) throws -> [RejectedMessage] {
        var named: [Int: UserKey] = [:]
        for (index, reject) in rejects.enumerated() {
            guard let value = reject.value,
                case .object(let members)? = try? JSONParser.parse(value, maxDepth: 64)
            else { continue }
            func text(_ key: String) -> String? {
                if case .string(let text)? = members.last(where: { $0.key == key })?.value { return text }
                return nil
            }
            guard let user = text("user_id") ?? text("actor_user_id") else { continue }
            let workspace = text("workspace_id").flatMap { canonicalUUID($0) } ?? UserKey.defaultWorkspace
            named[index] = UserKey(workspaceID: workspace, userID: canonicalUUID(user) ?? user)
        }
        guard !named.isEmpty else { return rejects }
        let suppressed = try suppressedPeople(Array(named.values))
        guard !suppressed.isEmpty else { return rejects }
        return rejects.enumerated().map { index, reject in
            guard let person = named[index], suppressed.contains(person) else { return reject }
            return RejectedMessage(source: reject.source, key: nil, value: nil, rejection: reject.rejection)
        }
    }

    /// Which of these people are suppressed now (read in the batch's transaction, so a
    /// suppression committed before the batch applies to all of it).
    func suppressedPeople(_ people: [UserKey]) throws -> Set<UserKey> {
        let distinct = Array(Set(people))
        guard !distinct.isEmpty else { return [] }
        // Suppressions name people by reference, never by id.
        let refs = distinct.map(PersonReference.of)
        let rows = try connection.execute(
            """
            SELECT s.workspace_id::text, s.person_ref FROM privacy.suppressions s
            JOIN unnest($1::uuid[], $2::text[]) AS b (workspace_id, person_ref)
              ON s.workspace_id = b.workspace_id AND s.person_ref = b.person_ref
            """,
            [arrayLiteral(distinct.map(\.workspaceID)), arrayLiteral(refs)]
        ).rows
        let suppressed = Set(rows.compactMap { row in row[0].flatMap { w in row[1].map { w + "/" + $0 } } })
        var found: Set<UserKey> = []
        for (person, ref) in zip(distinct, refs) where suppressed.contains(person.workspaceID + "/" + ref) {
            found.insert(person)
        }
        return found
    }

    /// The subjects of the people whose records are about to be stored (created for those who
    /// have none). Only records being stored make one: a re-delivered event of an erased person
    /// brings nothing of theirs back.
    private func subjects(of records: [IncomingRecord]) throws -> [UserKey: Subject] {
        var found: [UserKey: Subject] = [:]
        var missing: Set<UserKey> = []
        for person in Set(records.compactMap(\.person)) {
            if let subject = subjectCache[person] ?? learned[person] {
                found[person] = subject
            } else {
                missing.insert(person)
            }
        }
        guard !missing.isEmpty else { return found }
        let fetched = try SubjectDirectory(connection: connection).subjects(for: missing)
        learned.merge(fetched) { $1 }
        found.merge(fetched) { $1 }
        return found
    }

    /// Holds the people for the transaction (see `SubjectDirectory.hold`), then drops the cached
    /// subjects if an erasure committed since they were read: it waited for any batch holding its
    /// person, so what this transaction reads after the hold is current.
    private func holdPeople(_ people: [UserKey]) throws {
        let directory = SubjectDirectory(connection: connection)
        try directory.hold(people)
        learned = [:]
        let newest = try directory.newestErasure()
        if newest != erasuresSeen || subjectCache.count > Self.subjectCacheLimit {
            subjectCache = [:]
            erasuresSeen = newest
        }
    }

    /// After a commit: the subjects the transaction made or read are real, keep them.
    private func keepLearnedSubjects() {
        subjectCache.merge(learned) { $1 }
        learned = [:]
    }

    private typealias Appended = (
        stored: Int, duplicates: Int, conflicts: [RejectedMessage], refused: [RejectedMessage]
    )

    /// Appends the records that are new, after looking their ids up in the log (whose primary
    /// key is the workspace and id: a concurrent writer's copy makes the COPY fail, and the batch
    /// is retried).
    private func append(table: LogTable, _ records: [IncomingRecord]) throws -> Appended {
        let known = try storedHashes(table: table, records.map(\.record))
        let (fresh, duplicates, conflicts) = classify(
            table: table, records, Array(records.indices), identities: records.map(\.record.identity), known: known)
        let refused = try copyIsolatingFailures(table: table, fresh, subjects: try subjects(of: fresh))
        return (fresh.count - refused.count, duplicates, conflicts, refused)
    }

    /// Interaction events: the log is partitioned by month, so no key of its own spans an id.
    /// The batch first claims its ids in the registry, in one statement (a claim another writer
    /// holds waits for it, then finds its row), then appends the rows it claimed. If PostgreSQL
    /// refuses rows, the claim and the append are undone and redone without them; a refused
    /// record still decides whether later copies of it are re-deliveries or conflicts.
    private func appendInteractions(_ records: [IncomingRecord]) throws -> Appended {
        // Each identity built once: the claims are sorted by it, and a comparator that built
        // it for every comparison cost more than the rest of the batch's preparation.
        let identities = records.map(\.record.identity)
        var first: [String: Int] = [:]
        first.reserveCapacity(records.count)
        for (index, identity) in identities.enumerated() where first[identity] == nil { first[identity] = index }
        // Sorted, so that writers claiming overlapping ids take their locks in the same order.
        let ordered = first.sorted { $0.key < $1.key }.map(\.value)
        var refused: [RejectedMessage] = []
        while true {
            let excluded = Set(refused.map(\.source))
            let claims = excluded.isEmpty ? ordered : ordered.filter { !excluded.contains(records[$0].source) }
            try connection.execute("SAVEPOINT bte_claim")
            var claimed: Set<String> = []
            if !claims.isEmpty {
                let rows = try connection.execute(
                    """
                    INSERT INTO bte.interaction_event_ids (workspace_id, event_id, content_hash)
                    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[])
                    ON CONFLICT (workspace_id, event_id) DO NOTHING
                    RETURNING workspace_id::text || '/' || event_id::text
                    """,
                    [
                        arrayLiteral(claims.map { records[$0].record.workspaceID ?? UserKey.defaultWorkspace }),
                        arrayLiteral(claims.map { records[$0].record.id }),
                        arrayLiteral(claims.map { String(records[$0].record.contentHash) }),
                    ]
                ).rows
                claimed = Set(rows.compactMap { $0[0] })
            }
            var known = try storedHashes(
                table: .interactionEvents,
                claims.filter { !claimed.contains(identities[$0]) }.map { records[$0].record })
            guard known.count + claimed.count == claims.count else {
                throw StoreError(
                    .concurrentWriter, "an interaction event id was neither claimed nor found; retrying the batch")
            }
            var kept = Array(records.indices)
            if !excluded.isEmpty {
                for index in ordered where excluded.contains(records[index].source) {
                    known[identities[index]] = records[index].record.contentHash
                }
                kept = kept.filter { !excluded.contains(records[$0].source) }
            }
            let (fresh, duplicates, conflicts) = classify(
                table: .interactionEvents, records, kept, identities: identities, known: known)
            let newlyRefused = try copyIsolatingFailures(
                table: .interactionEvents, fresh, subjects: try subjects(of: fresh))
            if newlyRefused.isEmpty {
                try connection.execute("RELEASE SAVEPOINT bte_claim")
                return (fresh.count, duplicates, conflicts, refused)
            }
            try connection.execute("ROLLBACK TO SAVEPOINT bte_claim")
            try connection.execute("RELEASE SAVEPOINT bte_claim")
            refused += newlyRefused
        }
    }

    /// The content hashes stored under these records' identities (interaction events: in their
    /// id registry), keyed by identity.
    private func storedHashes(table: LogTable, _ records: [ValidRecord]) throws -> [String: Int64] {
        guard !records.isEmpty else { return [:] }
        let schema = RecordSchema.forTable(table)
        var known: [String: Int64] = [:]
        known.reserveCapacity(records.count)
        let hasWorkspace = records.first?.workspaceID != nil
        guard hasWorkspace else {
            let lookup =
                "SELECT \(schema.idField)::text, content_hash FROM \(table.rawValue) "
                + "WHERE \(schema.idField) = ANY($1::uuid[])"
            for row in try connection.execute(lookup, [arrayLiteral(Array(Set(records.map(\.id))))]).rows {
                if let id = row[0], let hash = row[1].flatMap({ Int64($0) }) { known[id] = hash }
            }
            return known
        }
        // Ids stay claimed after their rows expired (the interaction registry; the retired ids
        // of the other logs).
        let source =
            table == .interactionEvents
            ? "bte.interaction_event_ids"
            : "(SELECT workspace_id, \(schema.idField), content_hash FROM \(table.rawValue) UNION ALL "
                + "SELECT workspace_id, event_id, content_hash FROM bte.retired_event_ids "
                + "WHERE log = '\(table.rawValue)')"
        let lookup = """
            SELECT s.workspace_id::text || '/' || s.\(schema.idField)::text, s.content_hash
            FROM unnest($1::uuid[], $2::uuid[]) AS k(workspace_id, id)
            JOIN \(source) s ON s.workspace_id = k.workspace_id AND s.\(schema.idField) = k.id
            """
        let unique = Array(
            Dictionary(records.map { ($0.identity, $0) }, uniquingKeysWith: { first, _ in first }).values)
        let parameters = [
            arrayLiteral(unique.map { $0.workspaceID ?? UserKey.defaultWorkspace }), arrayLiteral(unique.map(\.id)),
        ]
        for row in try connection.execute(lookup, parameters).rows {
            if let identity = row[0], let hash = row[1].flatMap({ Int64($0) }) { known[identity] = hash }
        }
        return known
    }

    /// Splits records into new ones, re-deliveries (same id, same content) and conflicts (same
    /// id, different content). Each record is compared with what the log holds or, failing
    /// that, with the first record of the batch that will be stored under its id.
    /// `indices` are the records to classify, in order; `identities` each record's identity.
    private func classify(
        table: LogTable, _ records: [IncomingRecord], _ indices: [Int], identities: [String],
        known stored: [String: Int64]
    ) -> ([IncomingRecord], Int, [RejectedMessage]) {
        let schema = RecordSchema.forTable(table)
        var known = stored
        var fresh: [IncomingRecord] = []
        fresh.reserveCapacity(indices.count)
        var duplicates = 0
        var conflicts: [RejectedMessage] = []
        for index in indices {
            let incoming = records[index]
            let record = incoming.record
            guard let hash = known[identities[index]] else {
                known[identities[index]] = record.contentHash
                fresh.append(incoming)
                continue
            }
            if hash == record.contentHash {
                duplicates += 1
            } else {
                conflicts.append(
                    RejectedMessage(
                        source: incoming.source, key: incoming.key, value: incoming.value,
                        rejection: Rejection(
                            .conflictingDuplicate,
                            table.rejectsQuoteNoValues
                                ? "\(schema.idField) is already stored with different content"
                                : "\(schema.idField) \(record.id) is already stored with different content")))
            }
        }
        return (fresh, duplicates, conflicts)
    }

    /// COPYs the rows; if PostgreSQL refuses the data, bisects under savepoints until the
    /// refused rows are isolated and returns them as rejects. Other failures propagate.
    private func copyIsolatingFailures(
        table: LogTable, _ records: [IncomingRecord], subjects: [UserKey: Subject]
    ) throws -> [RejectedMessage] {
        guard !records.isEmpty else { return [] }
        let sql = IngestStore.copyStatement(for: table)
        var refused: [RejectedMessage] = []
        func attempt(_ slice: ArraySlice<IncomingRecord>) throws {
            try connection.execute("SAVEPOINT bte_copy")
            do {
                try connection.copyIn(sql, data: IngestStore.copyData(slice, subjects: subjects))
                try connection.execute("RELEASE SAVEPOINT bte_copy")
            } catch let error as PostgresError where error.sqlState == "23505" {
                // The lookup found none of these ids, so another writer stored one meanwhile: the
                // batch is retried, and its lookup will see them.
                throw StoreError(
                    .concurrentWriter,
                    "another writer stored some of these \(table.rawValue) ids meanwhile (\(error.message))")
            } catch let error as PostgresError where error.isDataError {
                try connection.execute("ROLLBACK TO SAVEPOINT bte_copy")
                try connection.execute("RELEASE SAVEPOINT bte_copy")
                if slice.count == 1, let only = slice.first {
                    refused.append(
                        RejectedMessage(
                            source: only.source, key: only.key, value: only.value,
                            rejection: Rejection(
                                .storageRejected,
                                table.rejectsQuoteNoValues
                                    ? "PostgreSQL refused the row [\(error.sqlState ?? "?")]"
                                        + "\(error.constraint.map { " (constraint \($0))" } ?? "")"
                                    : "PostgreSQL refused the row [\(error.sqlState ?? "?")]: \(error.message)")))
                    return
                }
                let middle = slice.startIndex + slice.count / 2
                try attempt(slice[slice.startIndex..<middle])
                try attempt(slice[middle..<slice.endIndex])
            }
        }
        try attempt(records[...])
        return refused
    }

    /// The COPY statement that appends to `table`.
    public static func copyStatement(for table: LogTable) -> String {
        let columns = RecordSchema.forTable(table).columnNames + (namesPeople(table) ? ["subject", "sealed"] : [])
        return "COPY \(table.rawValue) (\(columns.joined(separator: ", "))) FROM STDIN"
    }

    /// Logs whose rows are about a person, stored under the person's subject.
    static func namesPeople(_ table: LogTable) -> Bool { SealedRow.seals(table) }

    /// Rows in COPY text format, exactly as a batch appends them: a person's record under their
    /// subject (in `subjects`), sealed; a record of a person with no subject there as sent.
    public static func copyData(_ records: ArraySlice<IncomingRecord>, subjects: [UserKey: Subject] = [:]) throws
        -> [UInt8]
    {
        var encoder = CopyEncoder(capacity: records.count * 512)
        var nonces = NonceSource()
        for incoming in records {
            let record = incoming.record
            let sealed = try incoming.person.flatMap { subjects[$0] }.flatMap {
                try SealedRow.make(record, subject: $0, nonces: &nonces)
            }
            for value in sealed?.values ?? record.values { encoder.field(value) }
            encoder.field(sealed == nil ? record.extra : sealed?.extra)
            encoder.field(String(record.contentHash))
            encoder.field(incoming.source.topic)
            encoder.field(String(incoming.source.partition))
            encoder.field(String(incoming.source.offset))
            if namesPeople(record.table) {
                encoder.field(sealed?.subject)
                encoder.hexField(sealed?.sealed)
            }
            encoder.endRow()
        }
        return encoder.bytes
    }

    /// Creates the monthly partitions these records need (idempotent).
    public func ensurePartitions(for records: [IncomingRecord]) throws {
        var needed: [Int: Timestamp] = [:]
        for incoming in records where incoming.record.table == .interactionEvents {
            let key = incoming.record.timestamp.monthKey
            if !ensuredMonths.contains(key) { needed[key] = incoming.record.timestamp.monthBounds.start }
        }
        for (key, start) in needed.sorted(by: { $0.key < $1.key }) {
            try connection.execute("SELECT bte.ensure_interaction_partition($1::timestamptz)", [start.rfc3339])
            ensuredMonths.insert(key)
        }
    }

    /// Redrives rejects in one transaction: appends each valid record through the same path as
    /// a batch (a record already in its log is a duplicate and stores nothing, so a second
    /// redrive stores nothing new) and records every attempt in `bte.redrives`. Concurrent
    /// redrives of the same reject take turns (an advisory lock per reject); a crash loses the
    /// whole transaction, never half of it.
    public func redrive(_ attempts: [RedriveAttempt], by: String) throws -> [RedriveResult] {
        guard !attempts.isEmpty else { return [] }
        var valid: [IncomingRecord] = []
        for attempt in attempts { if case .valid(let incoming) = attempt.candidate { valid.append(incoming) } }
        do {
            try ensurePartitions(for: valid)
        } catch {
            ensuredMonths.removeAll()
            throw error
        }
        return try connection.transaction {
            try connection.execute(
                """
                SELECT pg_advisory_xact_lock(hashtext('bte.redrives'), (k % 2147483647)::int)
                FROM (SELECT DISTINCT k FROM unnest($1::bigint[]) AS k) ids ORDER BY k
                """, [arrayLiteral(attempts.map { String($0.rejectID) })])
            var results: [RedriveResult] = []
            for attempt in attempts {
                switch attempt.candidate {
                case .notRedrivable:
                    results.append(
                        RedriveResult(
                            rejectID: attempt.rejectID, outcome: .notRedrivable,
                            message: "its payload was not kept (personal data or intent telemetry)"))
                case .invalid(let rejection):
                    results.append(
                        RedriveResult(
                            rejectID: attempt.rejectID, outcome: .stillInvalid, code: rejection.code.rawValue,
                            message: rejection.message))
                case .valid(let incoming):
                    if let person = incoming.person, try !suppressedPeople([person]).isEmpty {
                        results.append(
                            RedriveResult(
                                rejectID: attempt.rejectID, outcome: .notRedrivable,
                                message: "its person is suppressed by a privacy request"))
                        continue
                    }
                    let table = incoming.record.table
                    try holdPeople([incoming.person].compactMap { $0 })
                    let appended =
                        table == .interactionEvents
                        ? try appendInteractions([incoming]) : try append(table: table, [incoming])
                    var result = RedriveResult(
                        rejectID: attempt.rejectID, outcome: .stored, table: table, eventID: incoming.record.id)
                    if appended.stored == 1 {
                        result.outcome = .stored
                    } else if appended.duplicates == 1 {
                        result.outcome = .alreadyStored
                    } else if let conflict = appended.conflicts.first {
                        result.outcome = .conflict
                        result.code = conflict.rejection.code.rawValue
                        result.message = conflict.rejection.message
                    } else {
                        result.outcome = .refused
                        result.code = appended.refused.first?.rejection.code.rawValue
                        result.message = appended.refused.first?.rejection.message
                    }
                    results.append(result)
                }
            }
            try connection.execute(
                """
                INSERT INTO bte.redrives (reject_id, outcome, record_source, stored_table, stored_event_id,
                    error_code, error_message, requested_by)
                SELECT r, o, s, t, e, c, m, $8
                FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
                    AS u(r, o, s, t, e, c, m)
                """,
                [
                    arrayLiteral(results.map { String($0.rejectID) }), arrayLiteral(results.map(\.outcome.rawValue)),
                    arrayLiteral(attempts.map { $0.fixed ? "fixed" : "stored_payload" }),
                    arrayLiteral(results.map { $0.table?.rawValue }), arrayLiteral(results.map(\.eventID)),
                    arrayLiteral(results.map(\.code)), arrayLiteral(results.map(\.message)), by,
                ])
            return results
        }
    }

    /// A message already rejected (by a replay, or another group) keeps its first row.
    private func insertRejects(_ rejects: [RejectedMessage]) throws {
        guard !rejects.isEmpty else { return }
        func hex(_ bytes: [UInt8]?) -> String? { bytes.map { "\\x" + hexString($0) } }
        try connection.execute(
            """
            INSERT INTO bte.rejected_events (source_topic, source_partition, source_offset, message_key, payload,
                error_code, error_message)
            SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bytea[], $5::bytea[], $6::text[], $7::text[])
            ON CONFLICT (source_topic, source_partition, source_offset) DO NOTHING
            """,
            [
                arrayLiteral(rejects.map(\.source.topic)), arrayLiteral(rejects.map { String($0.source.partition) }),
                arrayLiteral(rejects.map { String($0.source.offset) }), arrayLiteral(rejects.map { hex($0.key) }),
                arrayLiteral(rejects.map { hex($0.value) }), arrayLiteral(rejects.map(\.rejection.code.rawValue)),
                arrayLiteral(rejects.map(\.rejection.message)),
            ])
    }
}

/// A PostgreSQL array literal; each value double-quoted, `nil` as NULL.
func arrayLiteral(_ values: [String?]) -> String {
    var out = "{"
    for (index, value) in values.enumerated() {
        if index > 0 { out += "," }
        guard let value else {
            out += "NULL"
            continue
        }
        out += "\""
        // Escaping works on bytes: both specials are ASCII, so UTF-8 sequences pass untouched.
        if value.utf8.contains(where: { $0 == 0x22 || $0 == 0x5C }) {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(value.utf8.count + 8)
            for byte in value.utf8 {
                if byte == 0x22 || byte == 0x5C { bytes.append(0x5C) }
                bytes.append(byte)
            }
            out += String(decoding: bytes, as: UTF8.self)
        } else {
            out += value
        }
        out += "\""
    }
    return out + "}"
}

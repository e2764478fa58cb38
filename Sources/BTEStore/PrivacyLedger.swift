import BTEDomain
import Foundation
import Postgres

/// One line of the privacy ledger: a request that changed what BTE holds about people (erase,
/// erase_and_suppress, suppress, unsuppress) with its status history. It names people by
/// reference only, so it can be kept beside the backups; after a restore it is what brings the
/// restored cluster's erasures and suppressions up to date.
public struct PrivacyLedgerEntry: Sendable, Equatable {
    public struct Event: Sendable, Equatable {
        public let personRef: String?
        public let status: String
        public let evidence: JSONValue
        public let at: Timestamp

        public init(personRef: String?, status: String, evidence: JSONValue, at: Timestamp) {
            self.personRef = personRef
            self.status = status
            self.evidence = evidence
            self.at = at
        }
    }

    public let requestID: String
    public let workspaceID: String
    public let type: PrivacyRequestType
    public let personRefs: [String]
    public let reference: String?
    public let requestedBy: String
    public let receivedAt: Timestamp
    public let dueAt: Timestamp
    public let events: [Event]

    public init(
        requestID: String, workspaceID: String, type: PrivacyRequestType, personRefs: [String], reference: String?,
        requestedBy: String, receivedAt: Timestamp, dueAt: Timestamp, events: [Event]
    ) {
        self.requestID = requestID
        self.workspaceID = workspaceID
        self.type = type
        self.personRefs = personRefs
        self.reference = reference
        self.requestedBy = requestedBy
        self.receivedAt = receivedAt
        self.dueAt = dueAt
        self.events = events
    }

    /// The kinds a ledger carries: an export changes nothing to reapply.
    public static let types: Set<PrivacyRequestType> = [.erase, .eraseAndSuppress, .suppress, .unsuppress]
    public static let statuses: Set<String> = ["received", "running", "completed", "partial", "failed"]
    public static let maxLineBytes = 1 << 20
    /// A status per person and a few overall ones.
    public static let maxEvents = 3 * PrivacyStore.maxUsers + 16
    public static let maxRequesterBytes = 1_024

    /// The line's JSON: members in a fixed order, one line.
    public var line: String {
        func time(_ t: Timestamp) -> JSONValue { .string(t.rfc3339) }
        let events = JSONValue.array(
            events.map { event in
                .object([
                    (key: "person_ref", value: event.personRef.map { .string($0) } ?? .null),
                    (key: "status", value: .string(event.status)), (key: "evidence", value: event.evidence),
                    (key: "at", value: time(event.at)),
                ])
            })
        return JSONValue.object([
            (key: "request_id", value: .string(requestID)), (key: "workspace_id", value: .string(workspaceID)),
            (key: "request_type", value: .string(type.rawValue)),
            (key: "person_refs", value: .array(personRefs.map { .string($0) })),
            (key: "reference", value: reference.map { .string($0) } ?? .null),
            (key: "requested_by", value: .string(requestedBy)), (key: "received_at", value: time(receivedAt)),
            (key: "due_at", value: time(dueAt)), (key: "events", value: events),
        ]).canonicalString()
    }

    /// Reads a ledger line, checking every field: an entry that reads is one `reapply` can file.
    public static func parse(_ bytes: [UInt8]) throws(StoreError) -> PrivacyLedgerEntry {
        func bad(_ why: String) -> StoreError { StoreError(.invalidLedger, why) }
        guard bytes.count <= maxLineBytes else { throw bad("a line is at most \(maxLineBytes) bytes") }
        let value: JSONValue
        do { value = try JSONParser.parse(bytes, maxDepth: 16) } catch { throw bad("not JSON: \(error)") }
        guard case .object(let members) = value else { throw bad("a line is a JSON object") }
        let fields = Dictionary(members.map { ($0.key, $0.value) }) { first, _ in first }
        func string(_ name: String, in fields: [String: JSONValue]) throws(StoreError) -> String {
            guard case .string(let text)? = fields[name] else { throw bad("\(name) is a string") }
            return text
        }
        func time(_ name: String, in fields: [String: JSONValue]) throws(StoreError) -> Timestamp {
            guard let time = Timestamp(rfc3339: try string(name, in: fields)) else {
                throw bad("\(name) is an RFC 3339 time")
            }
            return time
        }
        func isReference(_ text: String) -> Bool {
            text.utf8.count == 64 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
        }
        guard let requestID = canonicalUUID(try string("request_id", in: fields)) else {
            throw bad("request_id is a UUID")
        }
        guard let workspaceID = canonicalUUID(try string("workspace_id", in: fields)) else {
            throw bad("workspace_id is a UUID")
        }
        guard let type = PrivacyRequestType(rawValue: try string("request_type", in: fields)), types.contains(type)
        else { throw bad("request_type is erase, erase_and_suppress, suppress or unsuppress") }
        guard case .array(let refValues)? = fields["person_refs"], (1...PrivacyStore.maxUsers).contains(refValues.count)
        else { throw bad("person_refs is an array of 1 to \(PrivacyStore.maxUsers) references") }
        var personRefs: [String] = []
        for ref in refValues {
            guard case .string(let text) = ref, isReference(text), !personRefs.contains(text) else {
                throw bad("person_refs holds distinct references (64 lowercase hex digits)")
            }
            personRefs.append(text)
        }
        var reference: String?
        switch fields["reference"] {
        case nil, .null?: reference = nil
        case .string(let text)? where !text.isEmpty && text.utf8.count <= PrivacyStore.maxReferenceBytes:
            reference = text
        default: throw bad("reference is null or a string of 1 to \(PrivacyStore.maxReferenceBytes) bytes")
        }
        let requestedBy = try string("requested_by", in: fields)
        guard !requestedBy.isEmpty, requestedBy.utf8.count <= maxRequesterBytes, !requestedBy.utf8.contains(0) else {
            throw bad("requested_by is a string of 1 to \(maxRequesterBytes) bytes")
        }
        guard case .array(let eventValues)? = fields["events"], eventValues.count <= maxEvents else {
            throw bad("events is an array of at most \(maxEvents) status changes")
        }
        var events: [Event] = []
        for eventValue in eventValues {
            guard case .object(let eventMembers) = eventValue else { throw bad("an event is an object") }
            let event = Dictionary(eventMembers.map { ($0.key, $0.value) }) { first, _ in first }
            var personRef: String?
            switch event["person_ref"] {
            case nil, .null?: personRef = nil
            case .string(let text)? where personRefs.contains(text): personRef = text
            default: throw bad("an event's person_ref is null or one of person_refs")
            }
            let status = try string("status", in: event)
            guard statuses.contains(status) else { throw bad("an event's status is one of \(statuses.sorted())") }
            guard case .object? = event["evidence"] else { throw bad("an event's evidence is an object") }
            events.append(
                Event(
                    personRef: personRef, status: status, evidence: event["evidence"] ?? .object([]),
                    at: try time("at", in: event)))
        }
        return PrivacyLedgerEntry(
            requestID: requestID, workspaceID: workspaceID, type: type, personRefs: personRefs, reference: reference,
            requestedBy: requestedBy, receivedAt: try time("received_at", in: fields),
            dueAt: try time("due_at", in: fields), events: events)
    }
}

/// What reapplying a ledger did.
public struct LedgerReapplied: Sendable, Equatable {
    /// Requests the cluster held already: committed before the restore point (left alone), or
    /// filed by an earlier reapply.
    public var held = 0
    /// Requests filed again, with their history, and carried out.
    public var reapplied = 0
    /// User ids erased again, and how many of them still had a subject (their rows readable).
    public var erasedUserIDs = 0
    public var subjectsDeleted = 0
    public var suppressed = 0
    public var unsuppressed = 0

    public init() {}
}

extension PrivacyStore {
    /// Writes the ledger: every erase, erase_and_suppress, suppress and unsuppress request with
    /// its status history, oldest first, one line each. Returns how many.
    public func ledger(write: (String) throws -> Void) throws -> Int {
        let format = "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'"
        let rows = try connection.execute(
            """
            SELECT json_build_object(
                'request_id', r.request_id, 'workspace_id', r.workspace_id, 'request_type', r.request_type,
                'person_refs', r.person_refs, 'reference', r.reference, 'requested_by', r.requested_by,
                'received_at', to_char(r.received_at AT TIME ZONE 'UTC', \(format)),
                'due_at', to_char(r.due_at AT TIME ZONE 'UTC', \(format)),
                'events', (SELECT coalesce(json_agg(json_build_object(
                        'person_ref', e.person_ref, 'status', e.status, 'evidence', e.evidence,
                        'at', to_char(e.at AT TIME ZONE 'UTC', \(format))) ORDER BY e.seq), '[]'::json)
                    FROM privacy.request_events e WHERE e.request_id = r.request_id))::text
            FROM privacy.requests r
            WHERE r.request_type IN ('erase', 'erase_and_suppress', 'suppress', 'unsuppress')
            ORDER BY r.received_at, r.request_id
            """
        ).rows
        for row in rows {
            // Read back through the same parser `reapply` uses: a ledger written is one that reads.
            try write(PrivacyLedgerEntry.parse(Array((row[0] ?? "").utf8)).line)
        }
        return rows.count
    }

    /// Evidence of the status event a reapply appends to each request it files again.
    static let reappliedMark = "reapplied_after_restore"

    /// Brings a restored cluster's privacy state up to the ledger's, in the ledger's order.
    ///
    /// Before ingest resumes: every request this cluster does not hold is filed again with its
    /// history (and a status event marking it reapplied) and carried out: erasures by reference
    /// (whatever user ids match now), suppressions and their removal. A request the cluster holds
    /// was carried out with it and is left alone.
    ///
    /// With `caughtUp`, after ingest has read the input topics to their end: the replay stored
    /// again the events that the people of reapplied erasures sent between the restore point and
    /// their erasure (under a new subject, readable), so their erasures run once more.
    public func reapply(_ entries: [PrivacyLedgerEntry], caughtUp: Bool = false) throws -> LedgerReapplied {
        var done = LedgerReapplied()
        for entry in entries {
            try connection.transaction {
                // One filer of a request at a time, as `file` does.
                try connection.execute(
                    "SELECT pg_advisory_xact_lock(hashtext('bte.privacy'), hashtext($1))", [entry.requestID])
                let held = try connection.execute(
                    """
                    SELECT EXISTS (SELECT 1 FROM privacy.request_events
                                   WHERE request_id = $1 AND evidence ? $2)
                    FROM privacy.requests WHERE request_id = $1
                    """, [entry.requestID, Self.reappliedMark]
                ).rows.first
                if let held {
                    done.held += 1
                    if caughtUp, held[0] == "t", entry.type == .erase || entry.type == .eraseAndSuppress {
                        try erase(entry, into: &done)
                    }
                    return
                }
                try connection.execute(
                    """
                    INSERT INTO privacy.requests (request_id, workspace_id, request_type, person_refs, reference,
                        requested_by, received_at, due_at)
                    VALUES ($1, $2, $3, $4::text[], $5, $6, $7::timestamptz, $8::timestamptz)
                    """,
                    [
                        entry.requestID, entry.workspaceID, entry.type.rawValue, arrayLiteral(entry.personRefs),
                        entry.reference, entry.requestedBy, entry.receivedAt.rfc3339, entry.dueAt.rfc3339,
                    ])
                for event in entry.events {
                    try connection.execute(
                        "INSERT INTO privacy.request_events (request_id, person_ref, status, evidence, at) "
                            + "VALUES ($1, $2, $3, $4::jsonb, $5::timestamptz)",
                        [
                            entry.requestID, event.personRef, event.status, event.evidence.canonicalString(),
                            event.at.rfc3339,
                        ])
                }
                // The overall status stays the ledger's; the mark says where this copy came from.
                let overall = entry.events.last { $0.personRef == nil }?.status ?? "received"
                try connection.execute(
                    "INSERT INTO privacy.request_events (request_id, person_ref, status, evidence) "
                        + "VALUES ($1, NULL, $2, jsonb_build_object($3::text, true))",
                    [entry.requestID, overall, Self.reappliedMark])
                if entry.type == .erase || entry.type == .eraseAndSuppress { try erase(entry, into: &done) }
                switch entry.type {
                case .suppress, .eraseAndSuppress:
                    for ref in entry.personRefs {
                        done.suppressed += try connection.execute(
                            """
                            INSERT INTO privacy.suppressions (workspace_id, person_ref, request_id) VALUES ($1, $2, $3)
                            ON CONFLICT (workspace_id, person_ref) DO NOTHING RETURNING 1
                            """, [entry.workspaceID, ref, entry.requestID]
                        ).rows.count
                    }
                case .unsuppress:
                    for ref in entry.personRefs {
                        done.unsuppressed += try unsuppress(workspace: entry.workspaceID, ref: ref) ? 1 : 0
                    }
                case .erase, .export: break
                }
                done.reapplied += 1
            }
        }
        return done
    }

    /// Erases an entry's people by reference, after the computations in flight have published.
    private func erase(_ entry: PrivacyLedgerEntry, into done: inout LedgerReapplied) throws {
        try holdErasureFence(retry: "reapply the ledger again (request \(entry.requestID))")
        for ref in entry.personRefs {
            guard
                case .object(let outcome)? = try connection.execute(
                    "SELECT privacy.erase_reference($1::uuid, $2)::text", [entry.workspaceID, ref]
                ).rows.first?[0].flatMap({ try? JSONParser.parse(Array($0.utf8)) })
            else { throw StoreError(.unexpectedReply, "privacy.erase_reference gave no outcome") }
            let count: (String) -> Int = { name in
                guard case .number(let text)? = outcome.first(where: { $0.key == name })?.value else { return 0 }
                return Int(text) ?? 0
            }
            done.erasedUserIDs += count("user_ids")
            done.subjectsDeleted += count("subjects_deleted")
        }
    }
}

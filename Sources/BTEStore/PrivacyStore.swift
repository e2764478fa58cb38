import BTECompute
import BTEDomain
import Foundation
import Postgres

/// What a privacy request asks for.
public enum PrivacyRequestType: String, CaseIterable, Sendable {
    case erase
    case eraseAndSuppress = "erase_and_suppress"
    case suppress
    case unsuppress
    case export

    /// The kinds this version carries out: all of them.
    public static let supported: [Self] = Self.allCases
}

/// A request and where it stands, overall and per user.
public struct PrivacyRequest: Sendable, Equatable {
    /// Per person, named by reference (`PersonReference`): the request's records hold no user id.
    public struct UserStatus: Sendable, Equatable {
        public let personRef: String
        public let status: String
        /// A JSON object.
        public let evidence: String
    }

    public let requestID: String
    public let workspaceID: String
    public let type: PrivacyRequestType
    /// The people the request names, by reference, in the order given.
    public let personRefs: [String]
    public let reference: String?
    public let requestedBy: String
    public let receivedAt: String
    public let dueAt: String
    /// `received`, `running`, `completed`, `partial` or `failed`: the newest overall status.
    public let status: String
    public let users: [UserStatus]
}

/// Files privacy requests and answers for them: the request and every status change are
/// appended, never changed; suppressions are the current state ingest reads.
public final class PrivacyStore {
    let connection: PostgresConnection

    /// Requests are due within 30 days of their receipt (the usual legal horizon).
    public static let dueDays = 30
    public static let maxUsers = 1_000
    public static let maxUserIDBytes = 255
    public static let maxReferenceBytes = 255

    public init(url: String) throws {
        connection = try PostgresConnection(url: url, applicationName: "bte-privacy")
    }

    /// False once the server or network dropped the connection.
    public var isHealthy: Bool { connection.isHealthy }

    /// The user ids of a request, checked and in their matching form: a UUID in lowercase (as
    /// the logs store actors), any other id as given; duplicates once, order kept.
    public static func normalizedUsers(_ userIDs: [String]) throws -> [String] {
        guard !userIDs.isEmpty else {
            throw StoreError(.invalidPrivacyRequest, "a privacy request names at least one user")
        }
        var seen: Set<String> = []
        var users: [String] = []
        for raw in userIDs {
            guard !raw.isEmpty, raw.utf8.count <= maxUserIDBytes, !raw.utf8.contains(0) else {
                throw StoreError(
                    .invalidPrivacyRequest, "a user id is a non-empty string of at most \(maxUserIDBytes) bytes")
            }
            let id = canonicalUUID(raw) ?? raw
            if seen.insert(id).inserted { users.append(id) }
        }
        guard users.count <= maxUsers else {
            throw StoreError(.invalidPrivacyRequest, "a privacy request names at most \(maxUsers) users")
        }
        return users
    }

    /// Files a request and carries out what can be done at once (suppress, unsuppress). The same
    /// `reference` in a workspace is the same request: filing it again returns it unchanged
    /// (`created` false); with another type or other users it is refused.
    public func file(
        workspaceID: String, type: PrivacyRequestType, userIDs: [String], reference: String?, by requester: String
    ) throws -> (request: PrivacyRequest, created: Bool) {
        guard let workspace = canonicalUUID(workspaceID) else {
            throw StoreError(.invalidPrivacyRequest, "the workspace is a UUID")
        }
        guard PrivacyRequestType.supported.contains(type) else {
            throw StoreError(
                .privacyRequestUnsupported,
                "\(type.rawValue) is not available in this version; suppress stops a person's new events "
                    + "(docs/privacy.md)")
        }
        let users = try Self.normalizedUsers(userIDs)
        let refs = users.map { PersonReference.of(UserKey(workspaceID: workspace, userID: $0)) }
        if let reference, reference.isEmpty || reference.utf8.count > Self.maxReferenceBytes {
            throw StoreError(
                .invalidPrivacyRequest, "a reference is a non-empty string of at most \(Self.maxReferenceBytes) bytes")
        }
        guard !requester.isEmpty else { throw StoreError(.invalidPrivacyRequest, "a request names who made it") }
        let id =
            reference.map { UUIDv5.make(name: "privacy-request|\(workspace)|\($0)") } ?? UUID().uuidString.lowercased()
        let created: Bool = try connection.transaction {
            // One filing per reference at a time; the second waits and finds the first.
            try connection.execute("SELECT pg_advisory_xact_lock(hashtext('bte.privacy'), hashtext($1))", [id])
            if let existing = try load(id) {
                guard existing.type == type, existing.personRefs == refs, existing.workspaceID == workspace else {
                    throw StoreError(
                        .privacyRequestConflict,
                        "reference \(reference ?? "") already names another request (\(existing.type.rawValue) "
                            + "of \(existing.personRefs.count) users)")
                }
                return false
            }
            try connection.execute(
                """
                INSERT INTO privacy.requests
                    (request_id, workspace_id, request_type, person_refs, reference, requested_by, due_at)
                VALUES ($1, $2, $3, $4::text[], $5, $6, now() + make_interval(days => $7::int))
                """,
                [id, workspace, type.rawValue, arrayLiteral(refs), reference, requester, String(Self.dueDays)])
            try appendStatus(id, user: nil, "received")
            switch type {
            case .suppress:
                for ref in refs {
                    let since = try suppress(workspace: workspace, ref: ref, request: id)
                    try appendStatus(id, user: ref, "completed", evidence: ["suppressed_since": .string(since)])
                }
                try appendStatus(id, user: nil, "completed")
            case .unsuppress:
                for ref in refs {
                    let removed = try unsuppress(workspace: workspace, ref: ref)
                    try appendStatus(id, user: ref, "completed", evidence: ["was_suppressed": .bool(removed)])
                }
                try appendStatus(id, user: nil, "completed")
            case .erase, .eraseAndSuppress:
                try holdErasureFence(retry: "run it again with the same reference")
                // Every person at once and in one order (as ingest holds them), so an erasure and
                // a batch of ingest wait for each other and never deadlock.
                try SubjectDirectory(connection: connection).hold(
                    users.map { UserKey(workspaceID: workspace, userID: $0) }, exclusively: true)
                var partial = false
                for (user, ref) in zip(users, refs) {
                    guard
                        case .object(var evidence)? = try connection.execute(
                            "SELECT privacy.erase_person($1::uuid, $2)::text", [workspace, user]
                        ).rows.first?[0].flatMap({ try? JSONParser.parse(Array($0.utf8)) })
                    else { throw StoreError(.unexpectedReply, "privacy.erase_person gave no evidence") }
                    if type == .eraseAndSuppress {
                        let since = try suppress(workspace: workspace, ref: ref, request: id)
                        evidence.append(("suppressed_since", .string(since)))
                    }
                    // Rows stored before people had subjects can't be made unreadable: say so.
                    let unsealed = evidence.first { $0.key == "unsealed_rows" }?.value
                    let complete = unsealed == nil || unsealed == .number("0")
                    partial = partial || !complete
                    try appendStatus(
                        id, user: ref, complete ? "completed" : "partial",
                        evidence: Dictionary(evidence.map { ($0.key, $0.value) }) { $1 })
                }
                try appendStatus(id, user: nil, partial ? "partial" : "completed")
            case .export:
                // An export completes when it has been written (`completeExport`).
                break
            }
            return true
        }
        guard let request = try load(id) else {
            throw StoreError(.unexpectedReply, "privacy request \(id) vanished after it was filed")
        }
        return (request, created)
    }

    /// Inside an erasure's transaction: first the computations in flight publish what they
    /// computed (their vectors then precede the tombstones); later ones read the logs after it
    /// commits. Waits at most `ErasureFence.waitSeconds`, then fails having erased nothing.
    func holdErasureFence(retry: String) throws {
        try connection.execute("SET LOCAL lock_timeout = '\(ErasureFence.waitSeconds)s'")
        do {
            try connection.execute("SELECT pg_advisory_xact_lock(\(ErasureFence.key))")
        } catch let error as PostgresError where error.sqlState == "55P03" {
            throw StoreError(
                .erasureWaited,
                "a projector or sweep kept the erasure waiting over \(ErasureFence.waitSeconds) s; "
                    + "nothing was erased: \(retry)")
        }
        try connection.execute("SET LOCAL lock_timeout = 0")
    }

    /// Stores a person's new events again; whether they were suppressed.
    func unsuppress(workspace: String, ref: String) throws -> Bool {
        try !connection.execute(
            "DELETE FROM privacy.suppressions WHERE workspace_id = $1 AND person_ref = $2 RETURNING 1",
            [workspace, ref]
        ).rows.isEmpty
    }

    /// Suppresses a person (by reference); returns since when they are suppressed.
    private func suppress(workspace: String, ref: String, request: String) throws -> String {
        try connection.execute(
            """
            WITH added AS (
                INSERT INTO privacy.suppressions (workspace_id, person_ref, request_id) VALUES ($1, $2, $3)
                ON CONFLICT (workspace_id, person_ref) DO NOTHING RETURNING since)
            SELECT to_char(since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') FROM added
            UNION ALL
            SELECT to_char(since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
            FROM privacy.suppressions WHERE workspace_id = $1 AND person_ref = $2
            LIMIT 1
            """, [workspace, ref, request]
        ).rows.first?[0] ?? ""
    }

    /// Records an export's completion with what it held, per source.
    public func completeExport(
        _ requestID: String, workspaceID: String, userID: String, counts: [(source: String, records: Int)]
    ) throws {
        let ref = PersonReference.of(UserKey(workspaceID: workspaceID, userID: userID))
        try connection.transaction {
            var sources: [(key: String, value: JSONValue)] = []
            for (source, records) in counts { sources.append((source, .number(String(records)))) }
            try connection.execute("SELECT pg_advisory_xact_lock(hashtext('bte.privacy'), hashtext($1))", [requestID])
            try appendStatus(requestID, user: ref, "completed", evidence: ["records": .object(sources)])
            // Done when every person in it has been exported at least once; until then running.
            guard let request = try load(requestID) else { return }
            let done = request.users.allSatisfy { $0.status == "completed" }
            let overall = done ? "completed" : "running"
            if request.status != overall { try appendStatus(requestID, user: nil, overall) }
        }
    }

    /// Writes the person's export (`export`) and then its manifest line, and records that the
    /// request's export of this person completed; returns the count per source.
    public func exportWithManifest(
        _ request: PrivacyRequest, userID: String, write: (String) throws -> Void
    ) throws -> [(source: String, records: Int)] {
        let counts = try export(workspaceID: request.workspaceID, userID: userID, write: write)
        try completeExport(request.requestID, workspaceID: request.workspaceID, userID: userID, counts: counts)
        try write(Self.manifest(request, user: userID, counts: counts))
        return counts
    }

    /// An export's last line: what it held per source, and what BTE holds that it leaves out.
    public static func manifest(_ request: PrivacyRequest, user: String, counts: [(source: String, records: Int)])
        -> String
    {
        let sources = JSONValue.object(counts.map { (key: $0.source, value: .number(String($0.records))) })
        let total = counts.reduce(0) { $0 + $1.records }
        return "{\"manifest\":{\"request_id\":\(JSONValue.quoted(request.requestID)),"
            + "\"workspace_id\":\(JSONValue.quoted(request.workspaceID)),\"user_id\":\(JSONValue.quoted(user)),"
            + "\"records\":\(total),\"sources\":\(sources.canonicalString()),"
            + "\"not_included\":{\"agent.intent_events\":\"intent telemetry names no workspace; its actor ids are "
            + "reviewed with bte intents\",\"bte.rejected_events\":\"a rejected message is not attributed "
            + "to a person; bte rejects export lists them\"}}}"
    }

    /// A request as it stands, or nil when there is none with this id in this workspace.
    public func request(_ requestID: String, workspaceID: String?) throws -> PrivacyRequest? {
        guard let id = canonicalUUID(requestID) else { return nil }
        guard let request = try load(id) else { return nil }
        if let workspaceID, canonicalUUID(workspaceID) != request.workspaceID { return nil }
        return request
    }

    /// What an export reads, in order: every log row and output about the person, and the
    /// privacy requests that name them. In the logs, `$S` is the person's subject (rows stored
    /// under it are opened with its key) and `$U` their user id (rows stored before subjects).
    public static let exportSources: [(source: String, query: String)] = [
        (
            "core.business_events",
            "core.business_events t WHERE workspace_id = $W AND (subject = $S OR subject IS NULL "
                + "AND actor_user_id::text = $U) ORDER BY timestamp, event_id"
        ),
        (
            "core.user_actions",
            "core.user_actions t WHERE workspace_id = $W AND (subject = $S OR subject IS NULL "
                + "AND actor_user_id::text = $U) ORDER BY timestamp, action_id"
        ),
        (
            "core.interaction_events",
            "core.interaction_events t WHERE workspace_id = $W AND (user_id = $S::text AND subject = $S "
                + "OR subject IS NULL AND (user_id = $U OR lower(user_id) = $U)) ORDER BY timestamp, event_id"
        ),
        ("bte.behavioral_vectors", "bte.behavioral_vectors t WHERE workspace_id = $W AND user_id = $U"),
        ("bte.bv_history", "bte.bv_history t WHERE workspace_id = $W AND user_id = $U ORDER BY as_of"),
        ("bte.insight_deliveries", "bte.insight_deliveries t WHERE workspace_id = $W AND user_id = $U ORDER BY seq"),
        // The model segments that list the person (a segment's filter is JSON the store wrote).
        (
            "bte.segments",
            "bte.segments t WHERE project_id = ($W)::text AND (t.filter::jsonb -> 'user_ids') ? $U ORDER BY name"
        ),
        (
            "privacy.requests",
            "privacy.requests t WHERE workspace_id = $W AND privacy.person_ref($W, $U) = ANY (person_refs) "
                + "ORDER BY received_at, request_id"
        ),
    ]

    /// Writes one NDJSON line per record BTE holds about the person, `{"source":…,"record":…}`,
    /// from one consistent snapshot, a page at a time; returns the count per source. Log rows are
    /// given as the producer sent them: their sealed content opened and put back.
    public func export(workspaceID: String, userID: String, write: (String) throws -> Void) throws -> [(
        source: String, records: Int
    )] {
        guard let workspace = canonicalUUID(workspaceID) else {
            throw StoreError(.invalidPrivacyRequest, "the workspace is a UUID")
        }
        guard let user = try Self.normalizedUsers([userID]).first else { return [] }
        return try connection.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") {
            let subject = try SubjectDirectory(connection: connection).existing([
                UserKey(workspaceID: workspace, userID: user)
            ]).values.first
            var counts: [(source: String, records: Int)] = []
            for (source, query) in Self.exportSources {
                let from = query.replacingOccurrences(of: "$W", with: sqlLiteral(workspace) + "::uuid")
                    .replacingOccurrences(of: "$U", with: sqlLiteral(user))
                    .replacingOccurrences(of: "$S", with: subject.map { sqlLiteral($0.id) + "::uuid" } ?? "NULL::uuid")
                let isLog = source.hasPrefix("core.")
                try connection.execute(
                    "DECLARE bte_export NO SCROLL CURSOR FOR SELECT row_to_json(t)::text"
                        + (isLog ? ", encode(t.sealed, 'hex')" : "") + " FROM \(from)")
                var count = 0
                while true {
                    let rows = try connection.execute("FETCH 500 FROM bte_export").rows
                    for row in rows {
                        var record = row[0] ?? "null"
                        if isLog { record = try Self.unsealed(record, sealed: row[1], subject: subject) }
                        try write("{\"source\":\(JSONValue.quoted(source)),\"record\":\(record)}")
                    }
                    count += rows.count
                    if rows.count < 500 { break }
                }
                try connection.execute("CLOSE bte_export")
                counts.append((source, count))
            }
            return counts
        }
    }

    /// A log row as its producer sent it: the fields its sealed content holds put back, and the
    /// storage columns (`subject`, `sealed`) left out.
    static func unsealed(_ row: String, sealed: String?, subject: Subject?) throws -> String {
        guard case .object(var members)? = try? JSONParser.parse(Array(row.utf8), maxDepth: 256) else { return row }
        members.removeAll { $0.key == "subject" || $0.key == "sealed" }
        if let sealed, let bytes = bytes(hex: sealed) {
            guard let subject else {
                throw StoreError(.sealingFailed, "a row of the person is sealed but their subject has no key")
            }
            guard case .object(let content) = try SealedRow.open(bytes, subject: subject) else { return row }
            for (key, value) in content {
                if let index = members.firstIndex(where: { $0.key == key }) {
                    members[index].value = value
                } else {
                    members.append((key, value))
                }
            }
        }
        return JSONValue.object(members).canonicalString()
    }

    /// A monthly partition of the interaction log past its retention.
    public struct ExpiredPartition: Sendable, Equatable {
        public let name: String
        public let from: String
        public let to: String
        public let rows: Int64

        public init(name: String, from: String, to: String, rows: Int64) {
            self.name = name
            self.from = from
            self.to = to
            self.rows = rows
        }
    }

    /// The interaction log's monthly partitions older than the `keepMonths` most recent months
    /// (the current one included), oldest first; with `execute`, dropped, each drop recorded in
    /// `privacy.retention_drops`. Needs a member of bte_retention.
    public func expirePartitions(keepMonths: Int, execute: Bool) throws -> [ExpiredPartition] {
        let format = "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'"
        return try connection.execute(
            """
            SELECT partition_name, to_char(lower_bound AT TIME ZONE 'UTC', \(format)),
                   to_char(upper_bound AT TIME ZONE 'UTC', \(format)), row_count
            FROM privacy.drop_log_partitions($1::int, $2::boolean)
            """, [String(keepMonths), execute ? "true" : "false"]
        ).rows.map {
            ExpiredPartition(name: $0[0] ?? "", from: $0[1] ?? "", to: $0[2] ?? "", rows: Int64($0[3] ?? "") ?? 0)
        }
    }

    /// The logs whose old rows expire by deletion, a month at a time (they are not partitioned).
    public static let rowExpiringLogs = ["core.business_events", "core.user_actions"]

    /// The months of `log` (`rowExpiringLogs`) older than `keepMonths` months, with their row
    /// counts; with `execute`, their rows are deleted (consent events kept) and each month's
    /// deletion recorded.
    public func expireRows(log: String, keepMonths: Int, execute: Bool) throws -> [ExpiredPartition] {
        let format = "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'"
        return try connection.execute(
            """
            SELECT partition_name, to_char(lower_bound AT TIME ZONE 'UTC', \(format)),
                   to_char(upper_bound AT TIME ZONE 'UTC', \(format)), row_count
            FROM privacy.expire_log_rows($1, $2::int, $3::boolean)
            """, [log, String(keepMonths), execute ? "true" : "false"]
        ).rows.map {
            ExpiredPartition(name: $0[0] ?? "", from: $0[1] ?? "", to: $0[2] ?? "", rows: Int64($0[3] ?? "") ?? 0)
        }
    }

    /// The people of a workspace suppressed now (by reference), with since when and by which
    /// request.
    public func suppressions(workspaceID: String) throws -> [(personRef: String, since: String, requestID: String)] {
        try connection.execute(
            """
            SELECT person_ref, to_char(since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), request_id::text
            FROM privacy.suppressions WHERE workspace_id = $1 ORDER BY person_ref
            """, [canonicalUUID(workspaceID) ?? workspaceID]
        ).rows.map { ($0[0] ?? "", $0[1] ?? "", $0[2] ?? "") }
    }

    private func appendStatus(
        _ requestID: String, user: String?, _ status: String, evidence: [String: JSONValue] = [:]
    ) throws {
        let object = JSONValue.object(evidence.sorted { $0.key < $1.key }.map { (key: $0.key, value: $0.value) })
        try connection.execute(
            "INSERT INTO privacy.request_events (request_id, person_ref, status, evidence) "
                + "VALUES ($1, $2, $3, $4::jsonb)",
            [requestID, user, status, object.canonicalString()])
    }

    private func load(_ id: String) throws -> PrivacyRequest? {
        let format = "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'"
        guard
            let row = try connection.execute(
                """
                SELECT request_id::text, workspace_id::text, request_type, array_to_json(person_refs)::text, reference,
                       requested_by, to_char(received_at AT TIME ZONE 'UTC', \(format)),
                       to_char(due_at AT TIME ZONE 'UTC', \(format))
                FROM privacy.requests WHERE request_id = $1
                """, [id]
            ).rows.first
        else { return nil }
        let events = try connection.execute(
            "SELECT person_ref, status, evidence::text FROM privacy.request_events WHERE request_id = $1 ORDER BY seq",
            [id]
        ).rows
        var overall = "received"
        var perUser: [String: PrivacyRequest.UserStatus] = [:]
        for event in events {
            guard let status = event[1] else { continue }
            if let user = event[0] {
                // jsonb prints with spaces; evidence is given in canonical JSON.
                let evidence = (try? JSONParser.parse(Array((event[2] ?? "{}").utf8)))?.canonicalString() ?? "{}"
                perUser[user] = PrivacyRequest.UserStatus(personRef: user, status: status, evidence: evidence)
            } else {
                overall = status
            }
        }
        let users = Self.decodeStrings(row[3] ?? "[]")
        return PrivacyRequest(
            requestID: row[0] ?? id, workspaceID: row[1] ?? "",
            type: PrivacyRequestType(rawValue: row[2] ?? "") ?? .export, personRefs: users, reference: row[4],
            requestedBy: row[5] ?? "", receivedAt: row[6] ?? "", dueAt: row[7] ?? "", status: overall,
            users: users.map {
                // Someone a running request has not come to yet is still as received.
                perUser[$0]
                    ?? PrivacyRequest.UserStatus(
                        personRef: $0, status: overall == "running" ? "received" : overall, evidence: "{}")
            })
    }

    static func decodeStrings(_ json: String) -> [String] {
        guard case .array(let items)? = try? JSONParser.parse(Array(json.utf8)) else { return [] }
        return items.compactMap { if case .string(let text) = $0 { return text } else { return nil } }
    }
}

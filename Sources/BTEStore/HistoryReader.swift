import BTECompute
import BTEDomain
import Postgres

/// Reads what the computations need, read-only, with one query per kind of history for all
/// workspaces at once (never one per workspace).
public struct HistoryReader {
    let connection: PostgresConnection

    /// History queries over all workspaces can take minutes on a large, freshly loaded log;
    /// ten minutes still ends a statement that hangs.
    public static let defaultStatementTimeoutMilliseconds = 600_000

    /// Opens a read-only connection; `bte_reader` is read-only by default anyway.
    public init(url: String, statementTimeoutMilliseconds: Int = HistoryReader.defaultStatementTimeoutMilliseconds)
        throws
    {
        connection = try PostgresConnection(
            url: url, applicationName: "bte-reader",
            options: PostgresConnectionOptions(statementTimeoutMilliseconds: statementTimeoutMilliseconds))
    }

    /// False once the server or network dropped the connection.
    public var isHealthy: Bool { connection.isHealthy }

    /// Holds `group`'s lock shared on this connection while it is open (a projector does,
    /// so `bte replay --execute` refuses to move the group's offsets under it).
    public func holdGroupLock(_ group: String) throws { try GroupLock.holdShared(group, on: connection) }

    /// The thresholds in force, read in the caller's snapshot.
    public func thresholds() throws -> Thresholds { try ThresholdStore(connection: connection).thresholds() }

    /// Runs `body` in one read-only, repeatable-read transaction: every query sees the same
    /// snapshot of the logs.
    /// Holds erasures off (a shared lock for this session; an erasure takes it exclusively
    /// before it commits) from before a computation's snapshot until what it computed is
    /// published: what it publishes about a person reaches the topics before an erasure's
    /// tombstones, and one that starts after an erasure committed reads the logs without them.
    public func holdErasures() throws {
        try connection.execute("SELECT pg_advisory_lock_shared(\(ErasureFence.key))")
    }

    /// Lets erasures in again (also when the session ends).
    public func releaseErasures() {
        _ = try? connection.execute("SELECT pg_advisory_unlock_shared(\(ErasureFence.key))")
    }

    public func snapshot<R>(_ body: () throws -> R) throws -> R {
        try connection.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", body)
    }

    /// The columns `businessEvents` decodes, in order.
    static let businessColumns =
        "event_id::text, event_type, entity_id::text, workspace_id::text, sub_vertical_id::text, actor_user_id::text, "
        + "(extract(epoch FROM timestamp) * 1000000)::bigint, metadata::text"

    /// The (workspace, stored user id) pairs under which the log holds these users' interactions:
    /// their subjects' ids, and the user ids themselves for rows stored before subjects existed.
    /// Matching the stored column keeps the (workspace_id, user_id) index in use.
    static func storedUserIDs(workspaces: String, users: String) -> String {
        """
        SELECT w, u FROM unnest(\(workspaces)::uuid[], \(users)::text[]) AS b(w, u)
        UNION ALL
        SELECT s.workspace_id, s.subject::text FROM bte_keys.subject_ids s
        JOIN unnest(\(workspaces)::uuid[], \(users)::text[]) AS b(w, u) ON s.workspace_id = b.w AND s.user_id = b.u
        """
    }

    func businessEvents(_ sql: String, _ parameters: [String?]) throws -> [BusinessEvent] {
        try connection.query(sql, parameters, HistoryReader.businessEvent)
    }

    func userActions(_ sql: String, _ parameters: [String?]) throws -> [UserAction] {
        try connection.query(sql, parameters, HistoryReader.userAction)
    }
}

extension HistoryReader {
    /// Throws `notDurable` unless ingest has stored every partition at least up to `next`.
    /// Listens for ingest's commits (see `awaitIngestCommit`); call once, outside a snapshot.
    public func listenForIngestCommits() throws {
        try connection.listen(IngestCommits.channel)
    }

    /// Waits up to `timeoutMilliseconds` for an ingest commit notified since the last call
    /// (of any group: the caller checks its offsets again). Returns whether one came. Call it
    /// outside a snapshot: notifications are delivered between transactions.
    @discardableResult
    public func awaitIngestCommit(timeoutMilliseconds: Int) throws -> Bool {
        !(try connection.waitForNotifications(timeoutMilliseconds: timeoutMilliseconds)).isEmpty
    }

    /// Forgets the commits notified so far (before checking the offsets again).
    public func clearIngestCommits() throws {
        _ = try connection.pendingNotifications()
    }

    public func waitUntilDurable(group: String, next: [(topic: String, partition: Int32, offset: Int64)]) throws {
        guard !next.isEmpty else { return }
        let rows = try connection.execute(
            "SELECT topic, partition, next_offset FROM bte.ingest_offsets "
                + "WHERE consumer_group = $1 AND topic = ANY($2::text[])",
            [group, arrayLiteral(Array(Set(next.map(\.topic))))]
        ).rows
        var stored: [String: Int64] = [:]
        for row in rows { stored["\(row[0] ?? "")/\(row[1] ?? "")"] = row[2].flatMap { Int64($0) } }
        for entry in next where (stored["\(entry.topic)/\(entry.partition)"] ?? 0) < entry.offset {
            throw StoreError(
                .notDurable,
                "\(entry.topic)[\(entry.partition)] is stored up to "
                    + "\(stored["\(entry.topic)/\(entry.partition)"] ?? 0), the batch needs \(entry.offset)"
            )
        }
    }
}

extension HistoryReader {
    /// The newest erasure's sequence number, and the workspaces of the erasures after `seq` (none when
    /// `seq` is nil: a first read only learns where the ledger stands).
    public func erasures(after seq: Int64?) throws -> (newest: Int64, workspaces: Set<String>) {
        let rows = try connection.execute(
            """
            SELECT (SELECT coalesce(max(seq), 0) FROM privacy.erasures),
                   (SELECT coalesce(array_to_json(array_agg(DISTINCT workspace_id::text)), '[]')::text
                    FROM privacy.erasures WHERE $1::bigint IS NOT NULL AND seq > $1::bigint)
            """, [seq.map(String.init)]
        ).rows
        let newest = rows.first?[0].flatMap { Int64($0) } ?? 0
        var workspaces: Set<String> = []
        if case .array(let items)? = rows.first?[1].flatMap({ try? JSONParser.parse(Array($0.utf8)) }) {
            for case .string(let workspace) in items { workspaces.insert(workspace) }
        }
        return (newest, workspaces)
    }

    /// The consent timelines to `purpose` of the given users (`ConsentTimeline.read`).
    public func consent(to purpose: ConsentTimeline.Purpose, of users: some Collection<UserKey>) throws
        -> [UserKey: ConsentTimeline]
    {
        try ConsentTimeline.read(purpose, of: users, on: connection)
    }

    /// Users with an interaction in (as_of − 30 days, as_of], sorted.
    public func activeUsers(asOf: Timestamp) throws -> [UserKey] {
        try connection.execute(
            "SELECT DISTINCT workspace_id::text, user_id FROM core.interaction_events_live "
                + "WHERE timestamp > $1 AND timestamp <= $2",
            [Timestamp(microseconds: asOf.microseconds - SignalComputer.window).rfc3339, asOf.rfc3339]
        ).rows.compactMap { row in
            guard let workspace = row[0], let user = row[1] else { return nil }
            return UserKey(workspaceID: workspace, userID: user)
        }.sorted()
    }

    /// The interactions of the given users (each in its own workspace) in the 30 days before
    /// each one's as_of, in one query.
    public func interactions(_ asOfByUser: [UserKey: Timestamp]) throws -> [Interaction] {
        guard let earliest = asOfByUser.values.min(), let latest = asOfByUser.values.max() else { return [] }
        let lo = Timestamp(microseconds: earliest.microseconds - SignalComputer.window).rfc3339
        let users = asOfByUser.keys.sorted()
        return try connection.query(
            """
            SELECT \(HistoryReader.interactionColumns)
            FROM core.interaction_events_live
            WHERE (workspace_id, stored_user_id) IN (\(HistoryReader.storedUserIDs(workspaces: "$1", users: "$2")))
              AND timestamp > $3 AND timestamp <= $4
            """, [arrayLiteral(users.map(\.workspaceID)), arrayLiteral(users.map(\.userID)), lo, latest.rfc3339],
            HistoryReader.interaction)
    }
}

extension HistoryReader {
    /// Successful acts: an act is the first `recommendation.acted` on the entity at or after its
    /// given of the same workspace (in (timestamp, event_id) order, as the computations pair them),
    /// among the events stored before it (`successPairing`); later acts on the same given are
    /// ignored, whatever their outcome. Its action type is its given's. With nil sub-verticals,
    /// those of every sub-vertical.
    func peerSuccesses(subVerticals: [String]?, after lo: Timestamp, upTo hi: Timestamp) throws -> [PeerSuccess] {
        guard subVerticals?.isEmpty != true else { return [] }
        return try connection.query(
            """
            SELECT a.workspace_id::text, a.sub_vertical_id::text, g.action_type,
                (extract(epoch FROM a.timestamp) * 1000000)::bigint
            FROM core.business_events a
            \(HistoryReader.successPairing)
              AND ($1::uuid[] IS NULL OR a.sub_vertical_id = ANY($1::uuid[])) AND a.timestamp > $2 AND a.timestamp <= $3
            """, [subVerticals.map { arrayLiteral($0.sorted()) }, lo.rfc3339, hi.rfc3339]
        ) { row in
            guard let ws = row[0], let sv = row[1], let type = row[2], let micros = row.int64(3) else {
                return nil
            }
            return PeerSuccess(
                workspaceID: ws, subVerticalID: sv, actionType: type, timestamp: Timestamp(microseconds: micros))
        }
    }
}

/// The lock that orders erasures against the computations that publish: they hold it shared,
/// an erasure exclusively from before it deletes until it commits.
public enum ErasureFence {
    static let key = "hashtext('bte.erasure'), 0"
    /// How long an erasure waits for the computations in flight to publish.
    public static let waitSeconds = 120
}

import BTECompute
import BTEDomain
import Postgres

/// A half-open range of workspace ids, [lower, upper): the sweep splits the workspaces by id so
/// that each connection reads, and each thread computes, one range at a time.
public struct WorkspaceRange: Sendable, Equatable {
    public var lower: String?
    public var upper: String?

    public init(lower: String? = nil, upper: String? = nil) {
        self.lower = lower
        self.upper = upper
    }

    public static let all = WorkspaceRange()

    /// The UUID space cut into `count` (1…256) ranges of equal width, in order. UUIDs order
    /// as their bytes do, so the bounds are the first byte's values.
    public static func parts(_ count: Int) -> [WorkspaceRange] {
        let count = min(max(count, 1), 256)
        let digits = Array("0123456789abcdef")
        let bounds: [String?] =
            [nil]
            + (1..<count).map { part in
                let byte = part * 256 / count
                return String([digits[byte / 16], digits[byte % 16]]) + "000000-0000-0000-0000-000000000000"
            } + [nil]
        return (0..<count).map { WorkspaceRange(lower: bounds[$0], upper: bounds[$0 + 1]) }
    }
}

extension HistoryReader {
    /// Runs `body` with this reader and `other` in one snapshot of the logs (this reader's,
    /// exported to the other's transaction): two connections read the same rows.
    public func sharedSnapshot<R>(with other: HistoryReader, _ body: () throws -> R) throws -> R {
        try snapshot {
            guard let id = try connection.execute("SELECT pg_export_snapshot()").rows.first?[0] ?? nil else {
                throw StoreError(.permission, "the reader's snapshot could not be exported")
            }
            return try other.connection.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") {
                try other.connection.execute("SET TRANSACTION SNAPSHOT '\(id)'")
                return try body()
            }
        }
    }

    /// Everything the signals and the insights of the workspaces active in the window
    /// (as_of − 30 days, as_of] with an id in `range` depend on, read once for both: the
    /// window's business events and user actions, every deal event and the orders of 90 days
    /// (insights), the givens, acts and completions before the window that pair with the
    /// window's, page views back to the oldest such given (hesitation), each workspace's newest
    /// user action and its sub-verticals; `peers` gives the window's successes (`sweepPeers`),
    /// asked for once the rows are read. The computations keep what each rule may see, so a
    /// superset of a rule's rows is exact. Sorted by workspace.
    public func sweepHistories(asOf: Timestamp, range: WorkspaceRange, peers: () throws -> PeerIndex) throws
        -> [WorkspaceHistory]
    {
        let hi = asOf.rfc3339
        let lo = Timestamp(microseconds: asOf.microseconds - SignalComputer.window).rfc3339
        let inRange = "($3::uuid IS NULL OR workspace_id >= $3::uuid) AND ($4::uuid IS NULL OR workspace_id < $4::uuid)"
        let bounds: [String?] = [lo, hi, range.lower, range.upper]
        let columns = HistoryReader.businessColumns

        var events = try businessEvents(
            """
            SELECT \(columns) FROM core.business_events_live
            WHERE \(inRange) AND timestamp <= $2::timestamptz AND (timestamp > $1::timestamptz
                OR event_type LIKE 'deal.%'
                OR (event_type = 'order.created' AND timestamp > $2::timestamptz - interval '90 days'))
            """, bounds)
        let actions = try userActions(
            "SELECT \(HistoryReader.actionColumns) FROM core.user_actions_live "
                + "WHERE \(inRange) AND timestamp > $1 AND timestamp <= $2", bounds)
        let loMicros = asOf.microseconds - SignalComputer.window
        var active = Set(actions.map(\.workspaceID))
        for event in events where event.timestamp.microseconds > loMicros { active.insert(event.workspaceID) }
        let workspaces = active.sorted()
        guard !workspaces.isEmpty else { return [] }

        let older = try businessEvents(
            """
            SELECT \(columns) FROM core.business_events_live o
            WHERE \(inRange) AND o.timestamp <= $1 AND (
                (o.event_type IN ('recommendation.given', 'recommendation.acted') AND o.entity_id IN (
                    SELECT entity_id FROM core.business_events WHERE event_type = 'recommendation.acted'
                    AND \(inRange) AND timestamp > $1 AND timestamp <= $2))
                OR (o.event_type = 'workflow.completed' AND o.entity_id IN (
                    SELECT entity_id FROM core.business_events WHERE event_type = 'workflow.started'
                    AND \(inRange) AND timestamp > $1 AND timestamp <= $2)))
            """, bounds)
        events += older
        if let earliest = older.filter({ $0.eventType == "recommendation.given" }).map(\.timestamp).min() {
            events += try businessEvents(
                "SELECT \(columns) FROM core.business_events_live WHERE \(inRange) "
                    + "AND event_type = 'page.viewed' AND timestamp > $1 AND timestamp <= $2",
                [earliest.rfc3339, lo, range.lower, range.upper])
        }
        let ids = arrayLiteral(workspaces)
        var newest: [String: UserAction] = [:]
        for action in try userActions(
            """
            SELECT DISTINCT ON (u.workspace_id) \(HistoryReader.actionColumns)
            FROM core.user_actions_live u JOIN unnest($1::uuid[]) AS w(id)
                ON u.workspace_id = w.id AND u.timestamp <= $2
            ORDER BY u.workspace_id, u.timestamp DESC, u.action_id
            """, [ids, hi])
        {
            newest[action.workspaceID] = action
        }
        var subVerticals: [String: Set<String>] = [:]
        for row in try connection.execute(
            "SELECT DISTINCT workspace_id::text, sub_vertical_id::text FROM core.business_events "
                + "WHERE workspace_id = ANY($1::uuid[]) AND timestamp <= $2", [ids, hi]
        ).rows {
            if let ws = row[0], let sv = row[1] { subVerticals[ws, default: []].insert(sv) }
        }

        let eventsByWorkspace = Dictionary(grouping: events, by: \.workspaceID)
        var actionsByWorkspace = Dictionary(grouping: actions, by: \.workspaceID)
        for (workspace, action) in newest
        where !(actionsByWorkspace[workspace] ?? []).contains(where: {
            $0.actionID == action.actionID
        }) {
            actionsByWorkspace[workspace, default: []].append(action)
        }
        let peers = try peers()
        return workspaces.map { ws in
            WorkspaceHistory(
                workspaceID: ws, events: eventsByWorkspace[ws] ?? [], actions: actionsByWorkspace[ws] ?? [],
                peers: peers, subVerticalIDs: subVerticals[ws] ?? [])
        }
    }

    /// Every success of the window (as_of − 30 days, as_of], of every sub-vertical: a superset
    /// of the peers any workspace's rules count, read once for all of a sweep's ranges.
    public func sweepPeers(asOf: Timestamp) throws -> PeerIndex {
        PeerIndex(
            try peerSuccesses(
                subVerticals: nil, after: Timestamp(microseconds: asOf.microseconds - SignalComputer.window), upTo: asOf
            ))
    }
}

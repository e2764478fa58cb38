import BTECompute
import BTEDomain
import Postgres

/// Where a stored row came from: its input topic's partition and offset.
public struct LogPosition: Sendable, Hashable, Comparable {
    public let topic: String
    public let partition: Int32
    public let offset: Int64

    public init(topic: String, partition: Int32, offset: Int64) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
    }

    public static func < (a: LogPosition, b: LogPosition) -> Bool {
        (a.topic, a.partition, a.offset) < (b.topic, b.partition, b.offset)
    }
}

/// A stored row of a log, as the projection applies it.
public enum LoggedRow: Sendable {
    case business(BusinessEvent)
    case action(UserAction)
    case interaction(Interaction)
}

/// A partition of an input topic.
public struct PartitionKey: Sendable, Hashable {
    public let topic: String
    public let partition: Int32

    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }
}

/// A transaction of ingest that stored a possible success, and what its group had stored of
/// each partition when it committed (its own rows included); a baseline is where the order began.
public struct SuccessCommit: Sendable, Equatable {
    public let id: Int64
    public let baseline: Bool
    public let next: [PartitionKey: Int64]

    public init(id: Int64, baseline: Bool, next: [PartitionKey: Int64]) {
        self.id = id
        self.baseline = baseline
        self.next = next
    }
}

/// The part of a partition a batch covers: offsets in [from, to).
public struct OffsetRange: Sendable, Hashable {
    public let topic: String
    public let partition: Int32
    public let from: Int64
    public let to: Int64

    public init(topic: String, partition: Int32, from: Int64, to: Int64) {
        self.topic = topic
        self.partition = partition
        self.from = from
        self.to = to
    }
}

/// Reads the logs by Kafka coordinates: what a batch stored, what an entity held before it, and
/// the successes stored since a position. Offsets that ingest committed with its rows say what
/// is complete, so nothing in flight is ever skipped.
extension HistoryReader {
    static let interactionColumns = """
        event_id::text, workspace_id::text, user_id, coalesce(session_id, ''),
        (extract(epoch FROM timestamp) * 1000000)::bigint,
        event_type, capsule_type, duration_ms, coalesce(success, true)
        """
    static let actionColumns =
        "action_id::text, workspace_id::text, actor_user_id::text, (extract(epoch FROM timestamp) * 1000000)::bigint"

    /// The rows stored from these ranges, in log order (topic, partition, offset).
    public func rows(in ranges: [OffsetRange]) throws -> [(LogPosition, LoggedRow)] {
        guard !ranges.isEmpty else { return [] }
        let parameters = [
            arrayLiteral(ranges.map(\.topic)), arrayLiteral(ranges.map { String($0.partition) }),
            arrayLiteral(ranges.map { String($0.from) }), arrayLiteral(ranges.map { String($0.to) }),
        ]
        // One index range scan per offset range. `OFFSET 0` keeps the planner from flattening
        // the subquery into a hash join over a scan of the whole log (it can't tell how narrow
        // the ranges are).
        func inRanges(_ table: String, _ columns: String) -> String {
            """
            SELECT l.* FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bigint[]) AS r(topic, part, lo, hi)
            CROSS JOIN LATERAL (
                SELECT \(columns), source_topic, source_partition, source_offset FROM \(table)
                WHERE source_topic = r.topic AND source_partition = r.part
                  AND source_offset >= r.lo AND source_offset < r.hi OFFSET 0) l
            """
        }
        var out: [(LogPosition, LoggedRow)] = try connection.query(
            inRanges("core.business_events_live", HistoryReader.businessColumns), parameters,
            HistoryReader.loggedBusinessEvent)
        out += try connection.query(
            inRanges("core.user_actions_live", HistoryReader.actionColumns), parameters, HistoryReader.loggedUserAction)
        out += try connection.query(
            inRanges("core.interaction_events_live", HistoryReader.interactionColumns), parameters,
            HistoryReader.loggedInteraction)
        return out.sorted { $0.0 < $1.0 }
    }

    /// Everything stored of these workspaces before the batch, in log order: rows of the
    /// batch's partitions from its first offset on (the batch itself, and what ingest stored
    /// beyond it) are left out, so the state is exactly the log's prefix.
    public func workspacePrefix(_ workspaces: [String], before ranges: [OffsetRange]) throws -> [(
        LogPosition, LoggedRow
    )] {
        guard !workspaces.isEmpty else { return [] }
        let parameters = [
            arrayLiteral(workspaces), arrayLiteral(ranges.map(\.topic)),
            arrayLiteral(ranges.map { String($0.partition) }), arrayLiteral(ranges.map { String($0.from) }),
        ]
        let notAfter = HistoryReader.beforeRanges(topic: "$2", partitions: "$3", offsets: "$4")
        var out: [(LogPosition, LoggedRow)] = try connection.query(
            "SELECT \(HistoryReader.businessColumns), source_topic, source_partition, source_offset "
                + "FROM core.business_events_live WHERE workspace_id = ANY($1::uuid[]) AND \(notAfter)", parameters,
            HistoryReader.loggedBusinessEvent)
        out += try connection.query(
            "SELECT \(HistoryReader.actionColumns), source_topic, source_partition, source_offset "
                + "FROM core.user_actions_live WHERE workspace_id = ANY($1::uuid[]) AND \(notAfter)", parameters,
            HistoryReader.loggedUserAction)
        return out.sorted { $0.0 < $1.0 }
    }

    /// The interactions of these users stored before the batch (as `workspacePrefix`), in log
    /// order: a user's as_of depends on every interaction before.
    public func userPrefix(_ users: [UserKey], before ranges: [OffsetRange]) throws -> [Interaction] {
        guard !users.isEmpty else { return [] }
        let notAfter = HistoryReader.beforeRanges(topic: "$3", partitions: "$4", offsets: "$5")
        return try connection.query(
            """
            SELECT \(HistoryReader.interactionColumns), source_topic, source_partition, source_offset
            FROM core.interaction_events_live
            WHERE (workspace_id, stored_user_id) IN (\(HistoryReader.storedUserIDs(workspaces: "$1", users: "$2")))
              AND \(notAfter)
            ORDER BY source_topic, source_partition, source_offset
            """,
            [
                arrayLiteral(users.map(\.workspaceID)), arrayLiteral(users.map(\.userID)),
                arrayLiteral(ranges.map(\.topic)), arrayLiteral(ranges.map { String($0.partition) }),
                arrayLiteral(ranges.map { String($0.from) }),
            ], HistoryReader.interaction)
    }

    /// Rows not at or after a range's first offset in its partition.
    static func beforeRanges(topic: String, partitions: String, offsets: String) -> String {
        """
        NOT EXISTS (SELECT 1 FROM unnest(\(topic)::text[], \(partitions)::int[], \(offsets)::bigint[]) AS r(t, p, o)
            WHERE source_topic = r.t AND source_partition = r.p AND source_offset >= r.o)
        """
    }

    /// Workspaces with rows in these partitions of `topic` and an event in the 30 days before the
    /// newest stored one, the most recently active first, at most `limit`.
    public func recentWorkspaces(topic: String, partitions: [Int32], limit: Int) throws -> [String] {
        try connection.execute(
            """
            WITH newest AS (SELECT max(timestamp) AS t FROM core.business_events
                            WHERE source_topic = $1 AND source_partition = ANY($2::int[]))
            SELECT workspace_id::text FROM core.business_events, newest
            WHERE source_topic = $1 AND source_partition = ANY($2::int[]) AND timestamp > newest.t - interval '30 days'
            GROUP BY workspace_id ORDER BY max(timestamp) DESC, workspace_id LIMIT $3
            """, [topic, arrayLiteral(partitions.map { String($0) }), String(limit)]
        ).rows.compactMap { $0[0] }
    }

    /// Where ingest's group has stored each partition of `topic` (the next offset).
    public func storedOffsets(group: String, topic: String) throws -> [Int32: Int64] {
        var out: [Int32: Int64] = [:]
        for row in try connection.execute(
            "SELECT partition, next_offset FROM bte.ingest_offsets WHERE consumer_group = $1 AND topic = $2",
            [group, topic]
        ).rows {
            if let partition = row[0].flatMap({ Int32($0) }), let offset = row[1].flatMap({ Int64($0) }) {
                out[partition] = offset
            }
        }
        return out
    }

    /// Successful acts (see `peerSuccesses`) stored in these ranges, of every sub-vertical, with
    /// where each was stored; with nil, every one stored.
    public func successes(in ranges: [OffsetRange]?) throws -> [(LogPosition, PeerSuccess)] {
        var source = "core.business_events a"
        var parameters: [String?] = []
        if let ranges {
            guard !ranges.isEmpty else { return [] }
            // One index range scan per offset range.
            source = """
                unnest($1::text[], $2::int[], $3::bigint[], $4::bigint[]) AS r(topic, part, lo, hi)
                CROSS JOIN LATERAL (
                    SELECT * FROM core.business_events b
                    WHERE b.source_topic = r.topic AND b.source_partition = r.part
                      AND b.source_offset >= r.lo AND b.source_offset < r.hi OFFSET 0) a
                """
            parameters = [
                arrayLiteral(ranges.map(\.topic)), arrayLiteral(ranges.map { String($0.partition) }),
                arrayLiteral(ranges.map { String($0.from) }), arrayLiteral(ranges.map { String($0.to) }),
            ]
        }
        return try connection.query(
            """
            SELECT a.workspace_id::text, a.sub_vertical_id::text, g.action_type,
                (extract(epoch FROM a.timestamp) * 1000000)::bigint, a.source_topic, a.source_partition,
                a.source_offset
            FROM \(source)
            \(HistoryReader.successPairing)
            """, parameters
        ) { row in
            guard let ws = row[0], let sv = row[1], let type = row[2], let micros = row.int64(3),
                let position = HistoryReader.position(row, at: 4)
            else { return nil }
            return (
                position,
                PeerSuccess(
                    workspaceID: ws, subVerticalID: sv, actionType: type, timestamp: Timestamp(microseconds: micros))
            )
        }
    }

    /// Which `recommendation.acted` rows (`a`) are successes, and their given (`g`): the given and
    /// the earlier acts it is paired against are those stored before the act in its partition, so
    /// whether an act is a success is fixed when it is stored (the same for the projector and the
    /// sweep, whenever they read it).
    static let successPairing = """
        JOIN LATERAL (
            SELECT metadata ->> 'action_type' AS action_type, g.timestamp AS given_at FROM core.business_events g
            WHERE g.event_type = 'recommendation.given' AND g.workspace_id = a.workspace_id
              AND g.entity_id = a.entity_id AND g.timestamp <= a.timestamp
              AND g.source_topic = a.source_topic AND g.source_partition = a.source_partition
              AND g.source_offset < a.source_offset
            ORDER BY g.timestamp DESC, g.event_id DESC LIMIT 1) g ON g.action_type IS NOT NULL
        WHERE a.event_type = 'recommendation.acted' AND a.metadata ->> 'outcome' = 'success'
          AND NOT EXISTS (
            SELECT 1 FROM core.business_events e
            WHERE e.event_type = 'recommendation.acted' AND e.workspace_id = a.workspace_id
              AND e.entity_id = a.entity_id AND e.timestamp >= g.given_at
              AND (e.timestamp, e.event_id) < (a.timestamp, a.event_id)
              AND e.source_topic = a.source_topic AND e.source_partition = a.source_partition
              AND e.source_offset < a.source_offset)
        """

    /// The success commits of an ingest group after `id` (migration 035), in order.
    public func successCommits(group: String, after id: Int64) throws -> [SuccessCommit] {
        var commits: [SuccessCommit] = []
        var current: (id: Int64, baseline: Bool, next: [PartitionKey: Int64])?
        for row in try connection.execute(
            """
            SELECT c.id, c.baseline, u.topic, u.part, u.next FROM bte.success_commits c
            LEFT JOIN LATERAL unnest(c.topics, c.partitions, c.next_offsets) AS u(topic, part, next) ON true
            WHERE c.ingest_group = $1 AND c.id > $2 ORDER BY c.id
            """, [group, String(id)]
        ).rows {
            guard let id = row[0].flatMap({ Int64($0) }) else { continue }
            if let open = current, open.id != id {
                commits.append(SuccessCommit(id: open.id, baseline: open.baseline, next: open.next))
                current = nil
            }
            if current == nil { current = (id, row[1] == "t", [:]) }
            if let topic = row[2], let partition = row[3].flatMap({ Int32($0) }),
                let next = row[4].flatMap({ Int64($0) })
            {
                current?.next[PartitionKey(topic: topic, partition: partition)] = next
            }
        }
        if let open = current { commits.append(SuccessCommit(id: open.id, baseline: open.baseline, next: open.next)) }
        return commits
    }

    static func position(_ row: PostgresRow, at index: Int) -> LogPosition? {
        guard let topic = row[index], let partition = row.int64(index + 1).flatMap({ Int32(exactly: $0) }),
            let offset = row.int64(index + 2)
        else { return nil }
        return LogPosition(topic: topic, partition: partition, offset: offset)
    }

    /// The decoders below, for rows followed by their (topic, partition, offset).
    static func loggedBusinessEvent(_ row: PostgresRow) -> (LogPosition, LoggedRow)? {
        guard let event = businessEvent(row), let position = position(row, at: 8) else { return nil }
        return (position, .business(event))
    }

    static func loggedUserAction(_ row: PostgresRow) -> (LogPosition, LoggedRow)? {
        guard let action = userAction(row), let position = position(row, at: 4) else { return nil }
        return (position, .action(action))
    }

    static func loggedInteraction(_ row: PostgresRow) -> (LogPosition, LoggedRow)? {
        guard let interaction = interaction(row), let position = position(row, at: 9) else { return nil }
        return (position, .interaction(interaction))
    }

    static func businessEvent(_ row: PostgresRow) -> BusinessEvent? {
        guard let id = row[0], let type = row[1], let entity = row[2], let ws = row[3], let sv = row[4],
            let actor = row[5], let micros = row.int64(6)
        else { return nil }
        let metadata = row.withBytes(7) { try? JSONParser.parse($0, maxDepth: 128) } ?? nil
        return BusinessEvent(
            eventID: id, eventType: type, entityID: entity, workspaceID: ws, subVerticalID: sv, actorUserID: actor,
            timestamp: Timestamp(microseconds: micros), metadata: metadata ?? .object([]))
    }

    static func userAction(_ row: PostgresRow) -> UserAction? {
        guard let id = row[0], let ws = row[1], let actor = row[2], let micros = row.int64(3) else {
            return nil
        }
        return UserAction(actionID: id, workspaceID: ws, actorUserID: actor, timestamp: Timestamp(microseconds: micros))
    }

    static func interaction(_ row: PostgresRow) -> Interaction? {
        guard let id = row[0], let workspace = row[1], let user = row[2], let micros = row.int64(4),
            let type = row[5]
        else { return nil }
        return Interaction(
            eventID: id, workspaceID: workspace, userID: user, sessionID: row[3] ?? "",
            timestamp: Timestamp(microseconds: micros), eventType: type, capsuleType: row[6],
            durationMilliseconds: row.int64(7).flatMap { Int(exactly: $0) }, success: row[8] != "f")
    }
}

import BTEDomain
import Postgres

/// Reads what `bte sink` stored, for the HTTP API and `bte insights stats`, as `bte_reader`.
/// Records come back as the bytes the projectors published.
public struct ProjectionReader {
    let connection: PostgresConnection

    /// An API read is a few indexed rows; a statement still running after this is stuck.
    public static let defaultStatementTimeoutMilliseconds = 10_000

    public init(url: String, statementTimeoutMilliseconds: Int = ProjectionReader.defaultStatementTimeoutMilliseconds)
        throws
    {
        connection = try PostgresConnection(
            url: url, applicationName: "bte-api",
            options: PostgresConnectionOptions(statementTimeoutMilliseconds: statementTimeoutMilliseconds))
    }

    public var isHealthy: Bool { connection.isHealthy }

    /// The user's latest stored vector (a read key asks only for its own workspace's users).
    public func latestVector(user: UserKey) throws -> String? {
        try connection.execute(
            "SELECT record FROM bte.behavioral_vectors WHERE workspace_id = $1::uuid AND user_id = $2",
            [user.workspaceID, user.userID]
        ).rows.first?[0] ?? nil
    }

    /// Per UTC day in [from, to), the last vector stored with an `as_of` on that day, oldest first.
    public func dailyVectors(user: UserKey, from: Timestamp, to: Timestamp) throws -> [(day: String, record: String)] {
        try connection.execute(
            """
            SELECT DISTINCT ON (d) to_char(d, 'YYYY-MM-DD'), record FROM (
                SELECT date_trunc('day', as_of AT TIME ZONE 'UTC') AS d, as_of, thresholds_version, record
                FROM bte.bv_history WHERE workspace_id = $1::uuid AND user_id = $2
                  AND as_of >= $3::timestamptz AND as_of < $4::timestamptz) v
            ORDER BY d, as_of DESC, thresholds_version DESC, record
            """, [user.workspaceID, user.userID, from.rfc3339, to.rfc3339]
        ).rows.compactMap { row in
            guard let day = row[0], let record = row[1] else { return nil }
            return (day, record)
        }
    }

    /// The newest value of each signal of the workspace (the highest thresholds version among
    /// equal as_of), by signal type.
    ///
    /// A DISTINCT ON over the workspace reads every stored value (18 months of them); this walks
    /// the (workspace, type, as_of) index instead: one probe for each next signal type, one for
    /// its newest value.
    public func latestSignals(workspaceID: String) throws -> [String] {
        try connection.execute(
            """
            WITH RECURSIVE types(signal_type) AS (
                (SELECT signal_type FROM bte.signal_values WHERE workspace_id = $1::uuid
                 ORDER BY signal_type LIMIT 1)
                UNION ALL
                SELECT (SELECT s.signal_type FROM bte.signal_values s
                        WHERE s.workspace_id = $1::uuid AND s.signal_type > types.signal_type
                        ORDER BY s.signal_type LIMIT 1)
                FROM types WHERE types.signal_type IS NOT NULL)
            SELECT newest.record FROM types CROSS JOIN LATERAL (
                SELECT v.record FROM bte.signal_values v
                WHERE v.workspace_id = $1::uuid AND v.signal_type = types.signal_type
                ORDER BY v.as_of DESC, v.thresholds_version DESC LIMIT 1) newest
            ORDER BY types.signal_type
            """, [workspaceID]
        ).rows.compactMap { $0[0] }
    }

    /// A signal's values with `from <= as_of <= to`, oldest first: the newest `limit` of them,
    /// and whether older ones were left out.
    public func signalHistory(workspaceID: String, signalType: String, from: Timestamp, to: Timestamp, limit: Int)
        throws -> (records: [String], truncated: Bool)
    {
        let rows = try connection.execute(
            """
            SELECT record FROM (
                SELECT as_of, thresholds_version, record FROM bte.signal_values
                WHERE workspace_id = $1::uuid AND signal_type = $2
                    AND as_of >= $3::timestamptz AND as_of <= $4::timestamptz
                ORDER BY as_of DESC, thresholds_version DESC LIMIT $5::int + 1) s
            ORDER BY as_of, thresholds_version
            """, [workspaceID, signalType, from.rfc3339, to.rfc3339, String(limit)]
        ).rows.compactMap { $0[0] }
        return rows.count > limit ? (Array(rows.dropFirst()), true) : (rows, false)
    }

    /// The workspace's insights with `as_of >= since`, newest first, at most `limit`.
    public func insights(workspaceID: String, since: Timestamp, limit: Int) throws -> (
        records: [String], truncated: Bool
    ) {
        let rows = try connection.execute(
            """
            SELECT record FROM bte.insights WHERE workspace_id = $1::uuid AND as_of >= $2::timestamptz
            ORDER BY as_of DESC, insight_type, id LIMIT $3::int + 1
            """, [workspaceID, since.rfc3339, String(limit)]
        ).rows.compactMap { $0[0] }
        return rows.count > limit ? (Array(rows.prefix(limit)), true) : (rows, false)
    }

    /// Each insight type's newest insight since a time (the one that holds), high priority first.
    public func latestInsights(workspaceID: String, since: Timestamp) throws -> [String] {
        try connection.execute(
            """
            SELECT record FROM (
                SELECT DISTINCT ON (insight_type) record, insight_type, priority, as_of FROM bte.insights
                WHERE workspace_id = $1::uuid AND as_of >= $2::timestamptz
                ORDER BY insight_type, as_of DESC, thresholds_version DESC) newest
            ORDER BY CASE priority WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END, as_of DESC, insight_type
            """, [workspaceID, since.rfc3339]
        ).rows.compactMap { $0[0] }
    }

    /// The workspace's user actions in (asOf − 7 d, asOf] and (asOf − 14 d, asOf − 7 d]: the two
    /// counts whose ratio is `momentum` as of that time.
    public func momentumCounts(workspaceID: String, asOf: Timestamp) throws -> (recent: Int, earlier: Int) {
        let row = try connection.execute(
            """
            SELECT count(*) FILTER (WHERE timestamp > $2::timestamptz - interval '7 days'),
                   count(*) FILTER (WHERE timestamp <= $2::timestamptz - interval '7 days')
            FROM core.user_actions
            WHERE workspace_id = $1::uuid AND timestamp > $2::timestamptz - interval '14 days'
              AND timestamp <= $2::timestamptz
            """, [workspaceID, asOf.rfc3339]
        ).rows.first
        return (row?[0].flatMap { Int($0) } ?? 0, row?[1].flatMap { Int($0) } ?? 0)
    }

    /// The insights delivered to a user of a workspace since a time, newest first, as published.
    public func deliveries(user: UserKey, since: Timestamp, limit: Int) throws -> (records: [String], truncated: Bool) {
        let rows = try connection.execute(
            """
            SELECT record FROM bte.insight_deliveries
            WHERE workspace_id = $1::uuid AND user_id = $2 AND outcome = 'delivered' AND decided_at >= $3::timestamptz
            ORDER BY decided_at DESC, id LIMIT $4::int + 1
            """, [user.workspaceID, user.userID, since.rfc3339, String(limit)]
        ).rows.compactMap { $0[0] }
        return rows.count > limit ? (Array(rows.prefix(limit)), true) : (rows, false)
    }

    /// A delivered record as a stream sends it.
    public struct StreamedDelivery: Sendable, Equatable {
        public var seq: Int64
        public var id: String
        public var record: String
        public var interrupt: Bool
        public var decidedAt: Timestamp
    }

    /// The user's delivered records stored after `seq`, in the order stored, at most `limit`.
    public func deliveries(user: UserKey, after seq: Int64, limit: Int) throws -> [StreamedDelivery] {
        try connection.execute(
            """
            SELECT seq, id::text, record, record::jsonb->>'mode' = 'interrupt',
                (extract(epoch FROM decided_at) * 1000000)::bigint
            FROM bte.insight_deliveries
            WHERE workspace_id = $1::uuid AND user_id = $2 AND seq > $3::bigint AND outcome = 'delivered'
            ORDER BY seq LIMIT $4::int
            """, [user.workspaceID, user.userID, String(seq), String(limit)]
        ).rows.compactMap { row in
            guard let seq = row[0].flatMap({ Int64($0) }), let id = row[1], let record = row[2],
                let micros = row[4].flatMap({ Int64($0) })
            else { return nil }
            return StreamedDelivery(
                seq: seq, id: id, record: record, interrupt: row[3] == "t", decidedAt: Timestamp(microseconds: micros))
        }
    }

    /// A place in the stored order of every workspace's deliveries: a transaction id, then seq.
    public struct FeedCursor: Sendable, Hashable, Comparable {
        public var tx: UInt64
        public var seq: Int64
        public init(tx: UInt64, seq: Int64) {
            self.tx = tx
            self.seq = seq
        }
        public static func < (a: Self, b: Self) -> Bool { (a.tx, a.seq) < (b.tx, b.seq) }
    }

    /// A delivery of some workspace's user as the shared feed reads it; `record` is nil when it
    /// was not delivered (suppressed or held out), which only moves the cursor.
    public struct FeedRow: Sendable, Equatable {
        public var cursor: FeedCursor
        public var user: UserKey
        public var delivery: StreamedDelivery?
        public var settled: Bool
    }

    /// Where a feed starting now begins: every transaction older than the oldest still running
    /// is over, so what it stored is already readable by a stream's own catch-up.
    public func feedStart() throws -> FeedCursor {
        let xmin = try connection.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text").rows.first?[0]
        guard let xmin, let tx = UInt64(xmin) else {
            throw StoreError(.unexpectedReply, "the oldest running transaction was not answered")
        }
        return FeedCursor(tx: tx, seq: 0)
    }

    /// Every workspace's deliveries stored after `cursor`, in (tx, seq) order. `settled` rows
    /// come first: their transactions are older than every one still running, so no row can
    /// appear before them later, and only they may move a cursor on. A row committed late by a
    /// transaction that began earlier is still after the cursor, so it is never skipped.
    public func feed(after cursor: FeedCursor, limit: Int) throws -> [FeedRow] {
        try connection.execute(
            """
            SELECT tx::text, seq, workspace_id::text, user_id, id::text,
                CASE WHEN outcome = 'delivered' THEN record END, record::jsonb->>'mode' = 'interrupt',
                (extract(epoch FROM decided_at) * 1000000)::bigint, tx < pg_snapshot_xmin(pg_current_snapshot())
            FROM bte.insight_deliveries
            WHERE (tx, seq) > ($1::text::xid8, $2::bigint)
            ORDER BY tx, seq LIMIT $3::int
            """, [String(cursor.tx), String(cursor.seq), String(limit)]
        ).rows.compactMap { row in
            guard let tx = row[0].flatMap({ UInt64($0) }), let seq = row[1].flatMap({ Int64($0) }),
                let workspace = row[2], let user = row[3], let id = row[4],
                let micros = row[7].flatMap({ Int64($0) })
            else { return nil }
            return FeedRow(
                cursor: FeedCursor(tx: tx, seq: seq), user: UserKey(workspaceID: workspace, userID: user),
                delivery: row[5].map {
                    StreamedDelivery(
                        seq: seq, id: id, record: $0, interrupt: row[6] == "t",
                        decidedAt: Timestamp(microseconds: micros))
                }, settled: row[8] == "t")
        }
    }

    /// Listens for the sink's commits of deliveries (see `awaitDeliveries`); call once.
    public func listenForDeliveries() throws {
        try connection.listen(DeliveryCommits.channel)
    }

    /// Waits up to `timeoutMilliseconds` for a commit of deliveries notified since the last call;
    /// returns whether one came.
    @discardableResult
    public func awaitDeliveries(timeoutMilliseconds: Int) throws -> Bool {
        !(try connection.waitForNotifications(timeoutMilliseconds: timeoutMilliseconds)).isEmpty
    }

    /// Where a user's stream resumes: after the delivery `id` when it is the user's, else after
    /// the newest stored (from now on).
    public func deliveryCursor(user: UserKey, after id: String?) throws -> Int64 {
        if let id, let canonical = canonicalUUID(id),
            let seq = try connection.execute(
                "SELECT seq FROM bte.insight_deliveries "
                    + "WHERE id = $1::uuid AND workspace_id = $2::uuid AND user_id = $3",
                [canonical, user.workspaceID, user.userID]
            ).rows.first?[0].flatMap({ Int64($0) })
        {
            return seq
        }
        return try connection.execute(
            "SELECT coalesce(max(seq), 0) FROM bte.insight_deliveries WHERE workspace_id = $1::uuid AND user_id = $2",
            [user.workspaceID, user.userID]
        ).rows.first?[0].flatMap { Int64($0) } ?? 0
    }

    public struct StoredInsight: Sendable, Equatable {
        public var workspaceID: String
        public var insightType: String
    }

    /// The insight's workspace and type, if it was stored.
    public func insight(id: String) throws -> StoredInsight? {
        guard let id = canonicalUUID(id) else { return nil }
        guard
            let row = try connection.execute(
                "SELECT workspace_id, insight_type FROM bte.insights WHERE id = $1::uuid", [id]
            ).rows.first, let workspace = row[0], let type = row[1]
        else { return nil }
        return StoredInsight(workspaceID: workspace, insightType: type)
    }

    /// The workspace's most recent `sub_vertical_id`, which a business event must carry.
    public func subVertical(workspaceID: String) throws -> String? {
        try connection.execute(
            """
            SELECT sub_vertical_id FROM core.business_events WHERE workspace_id = $1::uuid
            ORDER BY timestamp DESC LIMIT 1
            """, [workspaceID]
        ).rows.first?[0] ?? nil
    }

    /// What became of the in-context deliveries of one insight type decided since a time.
    public struct DeliveryStats: Sendable, Equatable {
        public var insightType: String
        public var delivered = 0
        public var control = 0
        public var suppressed = 0
        /// Delivered ones with at least one such feedback naming them (`delivery_id`).
        public var impressions = 0
        public var clicks = 0
        public var acted = 0
        public var useful = 0
        public var notUseful = 0
        public var dismissed = 0
        /// Delivered ones marked useful or acted: seed 003's "wow moments".
        public var wow = 0

        public init(insightType: String) { self.insightType = insightType }
    }

    /// Per insight type (every type of `types`, 0 included), suppressions by reason, and the users
    /// delivered to, of the deliveries decided since `since`, optionally of one workspace.
    public func deliveryStats(since: Timestamp, workspaceID: String?, types: [String]) throws
        -> (types: [DeliveryStats], suppressions: [(reason: String, count: Int)], users: Int)
    {
        let verdicts = ["impression", "clicked", "acted", "useful", "not_useful", "dismissed"]
        let feedback = (verdicts.map { "'\($0)'" } + ["'useful', 'acted'"]).map {
            "count(*) FILTER (WHERE d.outcome = 'delivered' AND EXISTS (SELECT 1 FROM f "
                + "WHERE f.delivery = d.id::text AND f.verdict IN (\($0))))"
        }
        let rows = try connection.execute(
            """
            WITH d AS (
                SELECT id, insight_type, outcome FROM bte.insight_deliveries
                WHERE decided_at >= $1::timestamptz AND ($2::uuid IS NULL OR workspace_id = $2::uuid)),
            f AS (
                SELECT DISTINCT e.metadata->>'delivery_id' AS delivery, e.metadata->>'verdict' AS verdict
                FROM core.business_events e
                WHERE e.event_type = 'insight.feedback' AND e.metadata ? 'delivery_id'
                  AND e.timestamp >= $1::timestamptz AND ($2::uuid IS NULL OR e.workspace_id = $2::uuid))
            SELECT d.insight_type, count(*) FILTER (WHERE d.outcome = 'delivered'),
                count(*) FILTER (WHERE d.outcome = 'control'), count(*) FILTER (WHERE d.outcome = 'suppressed'),
                \(feedback.joined(separator: ", "))
            FROM d GROUP BY 1
            """, [since.rfc3339, workspaceID]
        ).rows
        var byType = Dictionary(uniqueKeysWithValues: types.map { ($0, DeliveryStats(insightType: $0)) })
        for row in rows {
            let counts = row.dropFirst().map { $0.flatMap { Int($0) } ?? 0 }
            guard let type = row[0], var stats = byType[type], counts.count == 10 else { continue }
            (stats.delivered, stats.control, stats.suppressed) = (counts[0], counts[1], counts[2])
            (stats.impressions, stats.clicks, stats.acted) = (counts[3], counts[4], counts[5])
            (stats.useful, stats.notUseful, stats.dismissed) = (counts[6], counts[7], counts[8])
            stats.wow = counts[9]
            byType[type] = stats
        }
        let reasons = try connection.execute(
            """
            SELECT record::jsonb->>'reason', count(*) FROM bte.insight_deliveries
            WHERE decided_at >= $1::timestamptz AND ($2::uuid IS NULL OR workspace_id = $2::uuid)
              AND outcome = 'suppressed'
            GROUP BY 1 ORDER BY 2 DESC, 1
            """, [since.rfc3339, workspaceID]
        ).rows.compactMap { row -> (reason: String, count: Int)? in
            guard let reason = row[0], let count = row[1].flatMap({ Int($0) }) else { return nil }
            return (reason, count)
        }
        let users =
            try connection.execute(
                """
                SELECT count(DISTINCT (workspace_id, user_id)) FROM bte.insight_deliveries
                WHERE decided_at >= $1::timestamptz AND ($2::uuid IS NULL OR workspace_id = $2::uuid)
                  AND outcome = 'delivered'
                """, [since.rfc3339, workspaceID]
            ).rows.first?[0].flatMap { Int($0) } ?? 0
        return (types.compactMap { byType[$0] }, reasons, users)
    }

    /// Seed 003's quality figures for one insight type over the insights delivered since a time.
    public struct FeedbackStats: Sendable, Equatable {
        public var insightType: String
        /// Insights delivered (stored with `as_of >= since`).
        public var delivered: Int
        /// Of those, how many at least one user marked `acted`.
        public var acted: Int
        /// Users' latest opinion per insight: `useful` or `not_useful`.
        public var useful: Int
        public var notUseful: Int

        public init(insightType: String, delivered: Int, acted: Int, useful: Int, notUseful: Int) {
            self.insightType = insightType
            self.delivered = delivered
            self.acted = acted
            self.useful = useful
            self.notUseful = notUseful
        }

        /// useful ÷ (useful + not_useful); nil without an opinion.
        public var positiveFeedbackRate: Double? {
            useful + notUseful == 0 ? nil : Double(useful) / Double(useful + notUseful)
        }
        /// acted ÷ delivered; nil when none was delivered.
        public var actionRate: Double? { delivered == 0 ? nil : Double(acted) / Double(delivered) }
    }

    /// Per insight type (every type, 0 included), optionally of one workspace. Feedback counts for
    /// an insight of its own workspace only; a user's latest opinion (by time, then log order) is
    /// theirs.
    public func feedbackStats(since: Timestamp, workspaceID: String? = nil, types: [String]) throws -> [FeedbackStats] {
        let rows = try connection.execute(
            """
            WITH delivered AS (
                SELECT id, workspace_id, insight_type FROM bte.insights
                WHERE as_of >= $1::timestamptz AND ($2::uuid IS NULL OR workspace_id = $2::uuid)),
            feedback AS (
                SELECT d.id, d.insight_type, e.actor_user_id, e.metadata->>'verdict' AS verdict, e.timestamp,
                    e.source_offset
                FROM core.business_events e JOIN delivered d ON d.id = e.entity_id AND d.workspace_id = e.workspace_id
                WHERE e.event_type = 'insight.feedback'),
            opinion AS (
                SELECT DISTINCT ON (id, actor_user_id) insight_type, verdict FROM feedback
                WHERE verdict IN ('useful', 'not_useful')
                ORDER BY id, actor_user_id, timestamp DESC, source_offset DESC)
            SELECT t.type,
                (SELECT count(*) FROM delivered WHERE insight_type = t.type),
                (SELECT count(DISTINCT id) FROM feedback WHERE insight_type = t.type AND verdict = 'acted'),
                (SELECT count(*) FROM opinion WHERE insight_type = t.type AND verdict = 'useful'),
                (SELECT count(*) FROM opinion WHERE insight_type = t.type AND verdict = 'not_useful')
            FROM unnest($3::text[]) AS t(type) ORDER BY t.type
            """, [since.rfc3339, workspaceID, arrayLiteral(types)]
        ).rows
        return rows.map { row in
            FeedbackStats(
                insightType: row[0] ?? "", delivered: Int(row[1] ?? "") ?? 0, acted: Int(row[2] ?? "") ?? 0,
                useful: Int(row[3] ?? "") ?? 0, notUseful: Int(row[4] ?? "") ?? 0)
        }
    }

    /// Events appended to the logs per second over the last `seconds` seconds (by ingestion
    /// time), of one workspace or of all.
    public func ingestRate(seconds: Int, workspaceID: String? = nil) throws -> Double {
        let recent =
            "ingested_at > now() - make_interval(secs => $1::int) AND ($2::uuid IS NULL OR workspace_id = $2::uuid)"
        let count =
            try connection.execute(
                """
                SELECT (SELECT count(*) FROM core.business_events WHERE \(recent))
                    + (SELECT count(*) FROM core.user_actions WHERE \(recent))
                    + (SELECT count(*) FROM core.interaction_events WHERE \(recent))
                """, [String(seconds), workspaceID]
            ).rows.first?[0].flatMap { Int($0) } ?? 0
        return Double(count) / Double(max(seconds, 1))
    }

    /// When the sink last stored anything, of one workspace or of all (nil: never).
    public func newestOutputStoredAt(workspaceID: String? = nil) throws -> Timestamp? {
        let scoped = "$1::uuid IS NULL OR workspace_id = $1::uuid"
        return try connection.execute(
            """
            SELECT (extract(epoch FROM greatest(
                (SELECT max(stored_at) FROM bte.signal_values WHERE \(scoped)),
                (SELECT max(stored_at) FROM bte.insights WHERE \(scoped)),
                (SELECT max(stored_at) FROM bte.behavioral_vectors WHERE \(scoped)))) * 1000000)::bigint
            """, [workspaceID]
        ).rows.first?[0].flatMap { Int64($0) }.map { Timestamp(microseconds: $0) }
    }
}

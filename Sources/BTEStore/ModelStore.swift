import BTEDomain
import BTEModels
import Postgres

/// What the KPI models read from the logs (read-only) and the runs they record, as role
/// `bte_models`: it may read the logs and append to the models' tables, nothing else.
public final class ModelStore {
    let connection: PostgresConnection
    public static let defaultStatementTimeoutMilliseconds = 120_000

    public init(url: String, statementTimeoutMilliseconds: Int = ModelStore.defaultStatementTimeoutMilliseconds)
        throws
    {
        connection = try PostgresConnection(
            url: url, applicationName: "bte-models",
            options: PostgresConnectionOptions(statementTimeoutMilliseconds: statementTimeoutMilliseconds))
        try actAs("bte_models", on: connection)
    }

    public var isHealthy: Bool { connection.isHealthy }

    /// A segment's users, as a filter over the workspace's users (never SQL).
    public struct SegmentFilter: Sendable, Equatable {
        public var userIDs: [String]?
        public var deviceTypes: [String]?
        public init(userIDs: [String]? = nil, deviceTypes: [String]? = nil) {
            self.userIDs = userIDs
            self.deviceTypes = deviceTypes
        }

        /// `{"user_ids": [...]}` and/or `{"device_types": [...]}`.
        public init(json: String) throws {
            guard case .object(let members) = try JSONParser.parse(Array(json.utf8)) else {
                throw StoreError(.invalidSegment, "a segment filter is a JSON object")
            }
            for (key, value) in members {
                guard case .array(let items) = value else {
                    throw StoreError(.invalidSegment, "\(key) must be an array of strings")
                }
                let strings = items.compactMap { item -> String? in
                    if case .string(let s) = item { return s }
                    return nil
                }
                guard strings.count == items.count, !strings.isEmpty else {
                    throw StoreError(.invalidSegment, "\(key) must be a non-empty array of strings")
                }
                switch key {
                case "user_ids": userIDs = strings
                case "device_types": deviceTypes = strings
                default: throw StoreError(.invalidSegment, "unknown segment filter key \(key) (user_ids, device_types)")
                }
            }
            guard userIDs != nil || deviceTypes != nil else {
                throw StoreError(.invalidSegment, "a segment filter needs user_ids or device_types")
            }
        }

        public var json: String {
            var parts: [String] = []
            if let userIDs { parts.append("\"user_ids\":[\(userIDs.map(JSONValue.quoted).joined(separator: ","))]") }
            if let deviceTypes {
                parts.append("\"device_types\":[\(deviceTypes.map(JSONValue.quoted).joined(separator: ","))]")
            }
            return "{" + parts.joined(separator: ",") + "}"
        }
    }

    /// The workspace's activity: who did anything on which UTC day. Interaction events count
    /// for a workspace when they carry its id (the HTTP API stamps it); business events and
    /// user actions by their workspace and actor, except the operators' control changes and
    /// incidents and experiment assignments, which are not product use. $1 workspace, $2 last day (exclusive),
    /// $3 user ids or NULL, $4 device types or NULL.
    static let activity = """
        activity AS (
            SELECT DISTINCT user_id, day FROM (
                SELECT user_id, (timestamp AT TIME ZONE 'UTC')::date AS day FROM core.interaction_events_live
                WHERE workspace_id = $1::uuid AND timestamp < $2::date
                UNION ALL
                SELECT actor_user_id, (timestamp AT TIME ZONE 'UTC')::date FROM core.business_events_live
                WHERE workspace_id = $1::uuid AND timestamp < $2::date
                  AND event_type NOT IN ('control.changed', 'incident.started', 'incident.resolved',
                                         'experiment.assigned')
                UNION ALL
                SELECT actor_user_id, (timestamp AT TIME ZONE 'UTC')::date FROM core.user_actions_live
                WHERE workspace_id = $1::uuid AND timestamp < $2::date) a
            WHERE user_id NOT LIKE 'erased:%' AND ($3::text[] IS NULL OR user_id = ANY($3::text[]))
              AND ($4::text[] IS NULL OR user_id IN (
                    SELECT user_id FROM core.interaction_events_live
                    WHERE workspace_id = $1::uuid AND device_type = ANY($4::text[])))),
        first_seen AS (SELECT user_id, min(day) AS day FROM activity GROUP BY user_id)
        """

    /// A revenue row's `metadata.amount` as float8, or NULL (left out of sums) beyond the bound
    /// ingest enforces now (`Schemas.maxMoney`): one row stored before the check, a 1e400 that
    /// float8 can't hold or a 1e300 that overflows a sum, must not make every read fail. Only
    /// for rows already known to hold a number there (`jsonb_typeof(…) = 'number'`).
    static func amount(_ metadata: String) -> String {
        "CASE WHEN abs((\(metadata)->>'amount')::numeric) <= \(Int64(Schemas.maxMoney)) "
            + "THEN (\(metadata)->>'amount')::float8 END"
    }

    /// Daily KPIs for the days from `fromDay` to `toDay` (days since 1970-01-01, inclusive).
    /// retention_d7 of a day: of the users first seen that day, the share active 7 days later
    /// (nil until that day is in the range, or without new users).
    public func dailyKPIs(workspaceID: String, fromDay: Int, toDay: Int, segment: SegmentFilter?) throws
        -> [DailyKPIs]
    {
        let from = Self.date(fromDay)
        let end = Self.date(toDay + 1)
        let rows = try connection.execute(
            """
            WITH \(Self.activity),
            days AS (SELECT d::date AS day FROM generate_series($5::date, $2::date - 1, interval '1 day') d),
            dau AS (SELECT day, count(*) AS users FROM activity GROUP BY day),
            cohorts AS (
                SELECT f.day, count(*) AS size, count(a.user_id) AS retained FROM first_seen f
                LEFT JOIN activity a ON a.user_id = f.user_id AND a.day = f.day + 7
                GROUP BY f.day),
            revenue AS (
                SELECT (timestamp AT TIME ZONE 'UTC')::date AS day, sum(\(Self.amount("metadata"))) AS usd
                FROM core.business_events_live
                WHERE workspace_id = $1::uuid AND event_type IN ('deal.won', 'order.created')
                  AND timestamp >= $5::date AND timestamp < $2::date AND jsonb_typeof(metadata->'amount') = 'number'
                  AND ($3::text[] IS NULL AND $4::text[] IS NULL
                       OR actor_user_id IN (SELECT user_id FROM first_seen))
                GROUP BY 1),
            latency AS (
                SELECT (timestamp AT TIME ZONE 'UTC')::date AS day,
                       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95
                FROM core.interaction_events_live
                WHERE workspace_id = $1::uuid AND duration_ms IS NOT NULL
                  AND timestamp >= $5::date AND timestamp < $2::date
                  AND ($3::text[] IS NULL AND $4::text[] IS NULL OR user_id IN (SELECT user_id FROM first_seen))
                GROUP BY 1)
            SELECT (days.day - date '1970-01-01')::int, coalesce(dau.users, 0),
                   CASE WHEN days.day + 7 < $2::date AND cohorts.size > 0
                        THEN cohorts.retained::float8 / cohorts.size END,
                   coalesce(revenue.usd, 0), latency.p95
            FROM days LEFT JOIN dau USING (day) LEFT JOIN cohorts USING (day) LEFT JOIN revenue USING (day)
                 LEFT JOIN latency USING (day)
            ORDER BY days.day
            """,
            [
                workspaceID.lowercased(), end, segment?.userIDs.map { arrayLiteral($0) },
                segment?.deviceTypes.map { arrayLiteral($0) }, from,
            ]
        ).rows
        return rows.compactMap { row in
            guard let day = row[0].flatMap({ Int($0) }) else { return nil }
            return DailyKPIs(
                day: day, dailyActiveUsers: row[1].flatMap { Double($0) } ?? 0,
                retentionD7: row[2].flatMap { Double($0) },
                revenueUSD: row[3].flatMap { Double($0) } ?? 0, latencyP95Ms: row[4].flatMap { Double($0) })
        }
    }

    /// Retention by days since first seen, over the cohorts first seen from `fromDay` on:
    /// for each t ≥ 1, the users active t days after their first day and the users whose
    /// first day is at least t days before the end (the cohort sizes that could be).
    public func retentionCurve(workspaceID: String, fromDay: Int, toDay: Int, maxDays: Int, segment: SegmentFilter?)
        throws -> [(day: Int, retained: Int, eligible: Int)]
    {
        let rows = try connection.execute(
            """
            WITH \(Self.activity),
            cohort AS (SELECT user_id, day FROM first_seen WHERE day >= $5::date),
            returns AS (
                SELECT a.day - c.day AS t, count(*) AS retained FROM cohort c
                JOIN activity a ON a.user_id = c.user_id AND a.day > c.day AND a.day - c.day <= $6::int
                GROUP BY 1),
            offsets AS (SELECT generate_series(1, $6::int) AS t)
            SELECT o.t, coalesce(r.retained, 0),
                   (SELECT count(*) FROM cohort c WHERE c.day + o.t < $2::date)
            FROM offsets o LEFT JOIN returns r USING (t) ORDER BY o.t
            """,
            [
                workspaceID.lowercased(), Self.date(toDay + 1), segment?.userIDs.map { arrayLiteral($0) },
                segment?.deviceTypes.map { arrayLiteral($0) }, Self.date(fromDay), String(maxDays),
            ]
        ).rows
        return rows.compactMap { row in
            guard let t = row[0].flatMap({ Int($0) }), let retained = row[1].flatMap({ Int($0) }),
                let eligible = row[2].flatMap({ Int($0) })
            else { return nil }
            return (t, retained, eligible)
        }
    }

    /// The workspace's control changes and incidents up to the end of `toDay`.
    public func controlsAndIncidents(workspaceID: String, toDay: Int) throws -> ([ControlChange], [Incident]) {
        let rows = try connection.execute(
            """
            SELECT event_type, entity_id::text, (extract(epoch FROM timestamp) * 1000000)::bigint, metadata::text
            FROM core.business_events
            WHERE workspace_id = $1::uuid AND timestamp < $2::date
              AND event_type IN ('control.changed', 'incident.started', 'incident.resolved')
            ORDER BY timestamp, event_id
            """, [workspaceID.lowercased(), Self.date(toDay + 1)]
        ).rows
        var changes: [ControlChange] = []
        var open: [String: Int64] = [:]
        var incidents: [Incident] = []
        for row in rows {
            guard let type = row[0], let entity = row[1], let micros = row[2].flatMap({ Int64($0) }) else { continue }
            switch type {
            case "control.changed":
                guard let text = row[3], case .object(let members)? = try? JSONParser.parse(Array(text.utf8)) else {
                    continue
                }
                var values: [String: Double] = [:]
                for (key, value) in members where KPISeries.controlNames.contains(key) {
                    if case .number(let n) = value, let number = Double(n) { values[key] = number }
                }
                changes.append(ControlChange(microseconds: micros, values: values))
            case "incident.started":
                if open[entity] == nil { open[entity] = micros }
            default:
                if let start = open.removeValue(forKey: entity) {
                    incidents.append(Incident(start: start, end: micros))
                }
            }
        }
        incidents += open.values.sorted().map { Incident(start: $0, end: nil) }
        return (changes, incidents)
    }

    // MARK: Segments and runs

    public func createSegment(workspaceID: String, name: String, filter: SegmentFilter) throws -> String {
        do {
            return try connection.execute(
                "INSERT INTO bte.segments (project_id, name, filter) VALUES ($1, $2, $3) RETURNING segment_id::text",
                [workspaceID.lowercased(), name, filter.json]
            ).rows.first?[0] ?? ""
        } catch let error as PostgresError where error.sqlState == "23505" {
            throw StoreError(.invalidSegment, "workspace already has a segment named \(name)")
        }
    }

    public func segment(workspaceID: String, name: String) throws -> SegmentFilter? {
        guard
            let text = try connection.execute(
                "SELECT filter FROM bte.segments WHERE project_id = $1 AND name = $2", [workspaceID.lowercased(), name]
            ).rows.first?[0]
        else { return nil }
        return try SegmentFilter(json: text)
    }

    public func segments(workspaceID: String) throws -> [(name: String, filter: String, createdAt: String)] {
        try connection.execute(
            "SELECT name, filter, created_at::text FROM bte.segments WHERE project_id = $1 ORDER BY name",
            [workspaceID.lowercased()]
        ).rows.map { ($0[0] ?? "", $0[1] ?? "", $0[2] ?? "") }
    }

    /// The configuration and the run in one transaction; returns the run's id.
    public func recordEstimate(
        workspaceID: String, segment: String?, modelType: String, hyperparams: String, params: String, fit: String
    ) throws -> String {
        try connection.transaction {
            let config =
                try connection.execute(
                    """
                    INSERT INTO bte.model_configs (project_id, model_type, hyperparams) VALUES ($1, $2, $3::jsonb)
                    RETURNING config_id::text
                    """, [workspaceID.lowercased(), modelType, hyperparams]
                ).rows.first?[0] ?? nil
            return try connection.execute(
                """
                INSERT INTO bte.estimate_runs (project_id, segment, model_type, params, fit, config_id)
                VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6::uuid) RETURNING run_id::text
                """, [workspaceID.lowercased(), segment, modelType, params, fit, config]
            ).rows.first?[0] ?? ""
        }
    }

    public struct EstimateRun: Sendable {
        public var runID: String
        public var workspaceID: String
        public var segment: String?
        public var modelType: String
        public var params: String
        public var fit: String
        public var createdAt: String
    }

    public func estimateRun(id: String) throws -> EstimateRun? {
        guard canonicalUUID(id) != nil else { return nil }
        return try connection.execute(
            """
            SELECT run_id::text, project_id, segment, model_type, params::text, fit::text, created_at::text
            FROM bte.estimate_runs WHERE run_id = $1::uuid
            """, [id]
        ).rows.first.map {
            EstimateRun(
                runID: $0[0] ?? "", workspaceID: $0[1] ?? "", segment: $0[2], modelType: $0[3] ?? "",
                params: $0[4] ?? "{}", fit: $0[5] ?? "{}", createdAt: $0[6] ?? "")
        }
    }

    public func recordSimulation(
        workspaceID: String, estimateRunID: String, request: String, result: String, status: String, durationMs: Int
    ) throws -> String {
        try connection.execute(
            """
            INSERT INTO bte.simulation_runs (project_id, request, result, status, duration_ms, estimate_run_id)
            VALUES ($1, $2::jsonb, $3::jsonb, $4, $5::int, $6::uuid) RETURNING run_id::text
            """, [workspaceID.lowercased(), request, result, status, String(durationMs), estimateRunID]
        ).rows.first?[0] ?? ""
    }

    public struct RunSummary: Sendable {
        public var kind: String
        public var runID: String
        public var workspaceID: String
        public var modelType: String
        public var summary: String
        public var createdAt: String
    }

    /// Estimate, simulation, forecast and recommend runs, newest first.
    public func runs(workspaceID: String?, limit: Int) throws -> [RunSummary] {
        try connection.execute(
            """
            SELECT * FROM (
                SELECT 'estimate' AS kind, run_id::text, project_id, coalesce(model_type, ''),
                       coalesce('segment ' || segment, 'all users') AS summary, created_at
                FROM bte.estimate_runs WHERE $1::text IS NULL OR project_id = $1
                UNION ALL
                SELECT CASE
                           WHEN s.request ->> 'kind' = 'recommend' THEN 'recommend'
                           WHEN coalesce(jsonb_typeof(s.request -> 'plan'), 'null') = 'null' THEN 'forecast'
                           ELSE 'simulation'
                       END,
                       s.run_id::text, s.project_id, coalesce(e.model_type, ''),
                       coalesce(s.status, '') || ' ' || coalesce(s.duration_ms::text, '') || ' ms',
                       s.created_at
                FROM bte.simulation_runs s LEFT JOIN bte.estimate_runs e ON e.run_id = s.estimate_run_id
                WHERE $1::text IS NULL OR s.project_id = $1) r
            ORDER BY created_at DESC LIMIT $2::int
            """, [workspaceID?.lowercased(), String(limit)]
        ).rows.map {
            RunSummary(
                kind: $0[0] ?? "", runID: $0[1] ?? "", workspaceID: $0[2] ?? "", modelType: $0[3] ?? "",
                summary: $0[4] ?? "", createdAt: $0[5] ?? "")
        }
    }

    static func date(_ day: Int) -> String { ModelJSON.date(day) }
}

extension ModelStore {
    /// A bandit's log in order, and its prior settings from its first decision.
    public func banditLog(workspaceID: String, bandit: String) throws -> [BanditLog.Entry] {
        try connection.execute(
            """
            SELECT kind, decision_id::text, action, context::text, reward FROM bte.bandit_log
            WHERE project_id = $1 AND bandit = $2 ORDER BY entry_id
            """, [workspaceID.lowercased(), bandit]
        ).rows.compactMap { row in
            guard let kind = row[0], let id = row[1] else { return nil }
            if kind == "reward" {
                return row[4].flatMap { Double($0) }.map { .reward(decisionID: id, reward: $0) }
            }
            guard let action = row[2].flatMap({ Int($0) }), let text = row[3],
                case .array(let items)? = try? JSONParser.parse(Array(text.utf8))
            else { return nil }
            let context = items.compactMap { item -> Double? in
                if case .number(let n) = item { return Double(n) }
                return nil
            }
            return .decision(id: id, action: action, context: context)
        }
    }

    public func recordDecision(
        workspaceID: String, bandit: String, action: Int, context: [Double], detail: String
    ) throws -> String {
        try connection.execute(
            """
            INSERT INTO bte.bandit_log (project_id, bandit, kind, decision_id, action, context, detail)
            VALUES ($1, $2, 'decision', gen_random_uuid(), $3::int, $4::jsonb, $5::jsonb) RETURNING decision_id::text
            """,
            [
                workspaceID.lowercased(), bandit, String(action),
                "[" + context.map { $0.isFinite ? "\($0)" : "0" }.joined(separator: ",") + "]", detail,
            ]
        ).rows.first?[0] ?? ""
    }

    /// Appends the reward of a decision; each decision takes one.
    public func recordReward(decisionID: String, reward: Double) throws -> (workspace: String, bandit: String) {
        guard canonicalUUID(decisionID) != nil else { throw StoreError(.invalidBanditEntry, "a decision id is a UUID") }
        return try connection.transaction {
            guard
                let row = try connection.execute(
                    "SELECT project_id, bandit FROM bte.bandit_log WHERE decision_id = $1::uuid AND kind = 'decision'",
                    [decisionID]
                ).rows.first, let workspace = row[0], let bandit = row[1]
            else { throw StoreError(.invalidBanditEntry, "no decision \(decisionID)") }
            do {
                try connection.execute(
                    """
                    INSERT INTO bte.bandit_log (project_id, bandit, kind, decision_id, reward)
                    VALUES ($1, $2, 'reward', $3::uuid, $4::float8)
                    """, [workspace, bandit, decisionID, String(reward)])
            } catch let error as PostgresError where error.sqlState == "23505" {
                throw StoreError(.invalidBanditEntry, "decision \(decisionID) already has its reward")
            }
            return (workspace, bandit)
        }
    }
}

extension ModelStore {
    /// One user's first assignment to an experiment, with what the analysis reads around it.
    public struct ExperimentUnit: Sendable, Equatable {
        public var userID: String
        public var arm: String
        /// Assigned to both arms at some point: not analysed.
        public var conflicting: Bool
        /// The UTC day of the first assignment (days since 1970-01-01).
        public var day: Int
        /// Days active and revenue (deal.won, order.created) in the lookback before the assignment.
        public var activeBefore: Int
        public var revenueBefore: Double
        /// Days active after the assignment day, up to the window, and revenue and orders within
        /// the window after the assignment instant.
        public var activeAfter: Int
        public var revenueAfter: Double
        public var ordersAfter: Int
        /// The device of the user's last interaction before the assignment.
        public var deviceType: String?
    }

    /// Every user assigned to `experimentID` in the workspace up to the end of `toDay`, in the
    /// order of their first assignment. Activity is counted as in the KPIs (assignments,
    /// control changes and incidents are not activity).
    public func experimentUnits(
        workspaceID: String, experimentID: String, toDay: Int, windowDays: Int, lookbackDays: Int
    ) throws -> [ExperimentUnit] {
        guard canonicalUUID(experimentID) != nil else { return [] }
        let rows = try connection.execute(
            """
            WITH \(Self.activity),
            assigned AS (
                SELECT actor_user_id AS user_id,
                       (array_agg(metadata->>'arm' ORDER BY timestamp, event_id))[1] AS arm,
                       count(DISTINCT metadata->>'arm') > 1 AS conflicting,
                       min(timestamp) AS at, (min(timestamp) AT TIME ZONE 'UTC')::date AS day
                FROM core.business_events_live
                WHERE workspace_id = $1::uuid AND event_type = 'experiment.assigned' AND entity_id = $5::uuid
                  AND timestamp < $2::date AND actor_user_id NOT LIKE 'erased:%'
                GROUP BY actor_user_id),
            before AS (
                SELECT a.user_id, count(*) AS days FROM assigned a
                JOIN activity v ON v.user_id = a.user_id AND v.day >= a.day - $7::int AND v.day < a.day
                GROUP BY 1),
            after AS (
                SELECT a.user_id, count(*) AS days FROM assigned a
                JOIN activity v ON v.user_id = a.user_id AND v.day > a.day AND v.day <= a.day + $6::int
                GROUP BY 1),
            revenue AS (
                SELECT a.user_id,
                       sum(CASE WHEN r.timestamp < a.at THEN \(Self.amount("r.metadata")) ELSE 0 END) AS before,
                       sum(CASE WHEN r.timestamp > a.at THEN \(Self.amount("r.metadata")) ELSE 0 END) AS after,
                       count(*) FILTER (WHERE r.timestamp > a.at) AS orders
                FROM assigned a JOIN core.business_events_live r
                  ON r.workspace_id = $1::uuid AND r.actor_user_id = a.user_id
                 AND r.event_type IN ('deal.won', 'order.created') AND jsonb_typeof(r.metadata->'amount') = 'number'
                 AND r.timestamp >= a.at - make_interval(days => $7::int)
                 AND r.timestamp <= a.at + make_interval(days => $6::int) AND r.timestamp < $2::date
                GROUP BY 1),
            device AS (
                SELECT DISTINCT ON (a.user_id) a.user_id, i.device_type FROM assigned a
                JOIN core.interaction_events_live i
                  ON i.user_id = a.user_id AND i.workspace_id = $1::uuid AND i.timestamp < a.at
                 AND i.device_type IS NOT NULL
                ORDER BY a.user_id, i.timestamp DESC)
            SELECT a.user_id, a.arm, a.conflicting, (a.day - date '1970-01-01')::int,
                   coalesce(b.days, 0), coalesce(r.before, 0), coalesce(f.days, 0), coalesce(r.after, 0),
                   coalesce(r.orders, 0), d.device_type
            FROM assigned a LEFT JOIN before b USING (user_id) LEFT JOIN after f USING (user_id)
                 LEFT JOIN revenue r USING (user_id) LEFT JOIN device d USING (user_id)
            ORDER BY a.at, a.user_id
            """,
            [
                workspaceID.lowercased(), Self.date(toDay + 1), nil, nil, experimentID, String(windowDays),
                String(lookbackDays),
            ]
        ).rows
        return rows.compactMap { row in
            guard let user = row[0], let arm = row[1], let day = row[3].flatMap({ Int($0) }) else { return nil }
            return ExperimentUnit(
                userID: user, arm: arm, conflicting: row[2] == "t", day: day,
                activeBefore: row[4].flatMap { Int($0) } ?? 0, revenueBefore: row[5].flatMap { Double($0) } ?? 0,
                activeAfter: row[6].flatMap { Int($0) } ?? 0, revenueAfter: row[7].flatMap { Double($0) } ?? 0,
                ordersAfter: row[8].flatMap { Int($0) } ?? 0, deviceType: row[9])
        }
    }

    /// Each user active in the workspace from `fromDay` to `toDay`: days active and revenue.
    public func activeUsers(workspaceID: String, fromDay: Int, toDay: Int) throws
        -> [(userID: String, activeDays: Int, revenue: Double)]
    {
        try connection.execute(
            """
            WITH \(Self.activity),
            revenue AS (
                SELECT actor_user_id AS user_id, sum(\(Self.amount("metadata"))) AS usd
                FROM core.business_events_live
                WHERE workspace_id = $1::uuid AND event_type IN ('deal.won', 'order.created')
                  AND jsonb_typeof(metadata->'amount') = 'number' AND timestamp >= $5::date AND timestamp < $2::date
                GROUP BY 1)
            SELECT v.user_id, count(*), coalesce(max(r.usd), 0) FROM activity v LEFT JOIN revenue r USING (user_id)
            WHERE v.day >= $5::date GROUP BY v.user_id ORDER BY v.user_id
            """, [workspaceID.lowercased(), Self.date(toDay + 1), nil, nil, Self.date(fromDay)]
        ).rows.compactMap { row in
            guard let user = row[0], let days = row[1].flatMap({ Int($0) }) else { return nil }
            return (user, days, row[2].flatMap { Double($0) } ?? 0)
        }
    }
}

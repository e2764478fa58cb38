import BTEDomain
import BTEIntents
import Postgres

/// One rule in force (a row of `agent.verb_boosts`).
public struct BoostEntry: Equatable, Sendable {
    public let key: BoostKey
    public let weight: Double
    public let reason: String
    public let proposalID: String
    public let appliedBy: String
    public let appliedWhy: String
}

/// Reads intent telemetry for reviews (works as `bte_reader`, in read-only snapshots) and
/// appends verb boost rules (needs `bte_admin`). It never writes the intent or chat logs.
public struct IntentReviewStore {
    let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    public init(url: String) throws {
        connection = try PostgresConnection(url: url, applicationName: "bte-intents")
    }

    private static let window = "i.ts > $1::timestamptz AND i.ts <= $2::timestamptz"

    /// Runs `body`, turning "no such table or function" into a hint to migrate.
    private func migrated<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as PostgresError
            where error.sqlState == "42P01" || error.sqlState == "42883" || error.sqlState == "3F000"
        {
            throw StoreError(.schemaMissing, "\(error.message); run `bte migrate` on this database first")
        }
    }

    /// Everything `IntentReport` needs, from one snapshot: a grouped scan of the window and three
    /// top-`top` verb lists.
    public func reportInput(window: ReviewWindow, promptVersion: String?, top: Int) throws -> IntentReportInput {
        let bounds: [String?] = [window.since.rfc3339, window.until.rfc3339]
        let filtered = bounds + [promptVersion, String(top)]
        let version = "($3::text IS NULL OR i.prompt_version = $3)"
        return try migrated {
            try connection.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") {
                let groups = try connection.execute(
                    """
                    SELECT i.prompt_version, i.outcome, i.error_code, i.semreg_mode, count(*),
                           count(*) FILTER (WHERE agent.names_a_verb(i.semreg_denied_verbs)),
                           count(*) FILTER (WHERE i.forced_verb_fqn IS NOT NULL)
                    FROM agent.intent_events i WHERE \(Self.window)
                    GROUP BY 1, 2, 3, 4
                    """, bounds
                ).rows.map { row in
                    OutcomeGroup(
                        promptVersion: row[0], outcome: row[1] ?? "", errorCode: row[2], semregMode: row[3] ?? "",
                        events: Int(row[4] ?? "") ?? 0, denied: Int(row[5] ?? "") ?? 0, forced: Int(row[6] ?? "") ?? 0)
                }
                let hottest = try tallies(
                    """
                    SELECT i.chosen_verb_fqn, count(*), count(*) FILTER (WHERE i.outcome = 'matched')
                    FROM agent.intent_events i
                    WHERE \(Self.window) AND \(version) AND i.chosen_verb_fqn IS NOT NULL
                    GROUP BY 1 ORDER BY 2 DESC, i.chosen_verb_fqn COLLATE "C" LIMIT $4
                    """, filtered)
                let denied = try tallies(
                    """
                    SELECT d.verb_fqn, count(*), 0
                    FROM agent.intent_events i, LATERAL agent.verbs_of(i.semreg_denied_verbs) d
                    WHERE \(Self.window) AND \(version) AND i.semreg_denied_verbs IS NOT NULL
                    GROUP BY 1 ORDER BY 2 DESC, d.verb_fqn COLLATE "C" LIMIT $4
                    """, filtered)
                let clarify = try tallies(
                    """
                    SELECT c.verb_fqn, count(*), 0
                    FROM agent.intent_events i,
                        LATERAL agent.verbs_of(coalesce(i.verb_candidates_post, i.verb_candidates_pre)) c
                    WHERE \(Self.window) AND \(version) AND i.outcome = 'clarify_verb'
                    GROUP BY 1 ORDER BY 2 DESC, c.verb_fqn COLLATE "C" LIMIT $4
                    """, filtered)
                return IntentReportInput(
                    window: window, promptVersion: promptVersion, groups: groups,
                    hottestVerbs: hottest, deniedVerbs: denied, clarifyVerbs: clarify)
            }
        }
    }

    private func tallies(_ sql: String, _ parameters: [String?]) throws -> [VerbTally] {
        try connection.execute(sql, parameters).rows.map {
            VerbTally(verb: $0[0] ?? "", events: Int($0[1] ?? "") ?? 0, matched: Int($0[2] ?? "") ?? 0)
        }
    }

    /// The tallies a boost proposal is derived from: verbs users chose (selection_source
    /// user_choice) and verbs forced over discovery's first candidate, per scope bucket (the
    /// scope up to its first ':') and subject kind; plus the rules in force.
    public func proposalInput(window: ReviewWindow) throws -> (
        userChoices: [ChoiceTally], forcedOverrides: [ChoiceTally], current: [BoostKey: Double]
    ) {
        let bounds: [String?] = [window.since.rfc3339, window.until.rfc3339]
        let bucket =
            "coalesce(nullif(split_part(i.scope, ':', 1), ''), 'none'), "
            + "coalesce(nullif(i.subject_ref_type, ''), 'none')"
        func choices(_ sql: String) throws -> [ChoiceTally] {
            try connection.execute(sql, bounds).rows.map {
                ChoiceTally(
                    scopeBucket: $0[0] ?? "none", subjectKind: $0[1] ?? "none", verb: $0[2] ?? "",
                    events: Int($0[3] ?? "") ?? 0)
            }
        }
        return try migrated {
            try connection.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") {
                let chosen = try choices(
                    """
                    SELECT \(bucket), i.chosen_verb_fqn, count(*) FROM agent.intent_events i
                    WHERE \(Self.window) AND i.selection_source = 'user_choice' AND i.chosen_verb_fqn IS NOT NULL
                    GROUP BY 1, 2, 3
                    """)
                let forced = try choices(
                    """
                    SELECT \(bucket), i.forced_verb_fqn, count(*) FROM agent.v_intent_semreg_overrides i
                    WHERE \(Self.window)
                    GROUP BY 1, 2, 3
                    """)
                var current: [BoostKey: Double] = [:]
                for entry in try boostsInForce() { current[entry.key] = entry.weight }
                return (chosen, forced, current)
            }
        }
    }

    /// The rules in force, by key.
    public func boostsInForce() throws -> [BoostEntry] {
        try migrated {
            try connection.execute(
                """
                SELECT scope_bucket, subject_kind, phase, verb_fqn, boost_weight::float8, reason, proposal_id,
                    applied_by, applied_why
                FROM agent.verb_boosts
                ORDER BY scope_bucket COLLATE "C", subject_kind COLLATE "C", phase COLLATE "C", verb_fqn COLLATE "C"
                """
            ).rows.map {
                BoostEntry(
                    key: BoostKey(
                        scopeBucket: $0[0] ?? "", subjectKind: $0[1] ?? "", phase: $0[2] ?? "", verb: $0[3] ?? ""),
                    weight: Double($0[4] ?? "") ?? 0, reason: $0[5] ?? "", proposalID: $0[6] ?? "",
                    appliedBy: $0[7] ?? "", appliedWhy: $0[8] ?? "")
            }
        }
    }

    /// Appends the rules in one transaction, recording who applied them and why; refuses a
    /// proposal whose rules were applied before, or one made against rules that have changed
    /// since. Returns the proposal id.
    @discardableResult
    public func apply(_ rules: [BoostRule], by admin: String, why: String) throws -> String {
        guard !admin.allSatisfy(\.isWhitespace), !why.allSatisfy(\.isWhitespace) else {
            throw StoreError(.invalidBoostRule, "applying a proposal needs who (--by) and why (--why)")
        }
        guard !rules.isEmpty else { throw StoreError(.invalidBoostRule, "no rules to apply") }
        let id = BoostProposal.id(of: rules)
        try migrated {
            try connection.transaction {
                // Advisory: bte_admin may only insert, and two admins applying the same file at once
                // must not both succeed.
                _ = try connection.execute("SELECT pg_advisory_xact_lock(hashtext('agent.verb_boost_rules'))")
                if let earlier = try connection.execute(
                    "SELECT applied_by, to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                        + "FROM agent.verb_boost_rules WHERE proposal_id = $1 LIMIT 1",
                    [id]
                ).rows.first {
                    throw StoreError(
                        .proposalAlreadyApplied,
                        "proposal \(id) was already applied by \(earlier[0] ?? "?") at \(earlier[1] ?? "?")")
                }
                var inForce: [BoostKey: (weight: Double, proposal: String)] = [:]
                for entry in try boostsInForce() { inForce[entry.key] = (entry.weight, entry.proposalID) }
                for rule in rules
                where inForce[rule.key].map({ formatRate($0.weight) }) != rule.replacing.map(formatRate) {
                    let key = rule.key
                    let now = inForce[key].map { "\(formatRate($0.weight)) (proposal \($0.proposal))" } ?? "no rule"
                    throw StoreError(
                        .proposalStale,
                        "\(key.scopeBucket)/\(key.subjectKind)/\(key.phase)/\(key.verb) was proposed against "
                            + "\(rule.replacing.map(formatRate) ?? "no rule") but \(now) is in force now; propose again"
                    )
                }
                for rule in rules {
                    _ = try connection.execute(
                        """
                        INSERT INTO agent.verb_boost_rules (scope_bucket, subject_kind, phase, verb_fqn, boost_weight,
                            reason, proposal_id, applied_by, applied_why)
                        VALUES ($1, $2, $3, $4, $5::numeric, $6, $7, $8, $9)
                        """,
                        [
                            rule.key.scopeBucket, rule.key.subjectKind, rule.key.phase, rule.key.verb,
                            formatRate(rule.weight), rule.reason, id, admin, why,
                        ])
                }
            }
        }
        return id
    }
}

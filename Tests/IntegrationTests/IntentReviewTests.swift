import BTEDomain
import BTETestSupport
import Foundation
import Postgres
import Testing

/// A hand-built intent event; the review reads the log, so the fixture is written straight into
/// it as the owner (what ingest would have stored).
struct IntentRow {
    var id: Int
    var ts: String
    var session: Int
    var version: String?
    var outcome: String
    var mode = "applied"
    var scope: String?
    var subject: String?
    var pre: String?
    var post: String?
    var chosen: String?
    var selection: String?
    var forced: String?
    var denied: String?
    var macroChecked = false
    var macroDenied: String?
    var error: String?
    var extra: String?

    static func uuid(_ n: Int, _ prefix: String = "00000000") -> String { fixtureUUID(n, prefix: prefix) }

    func insert(into connection: PostgresConnection) throws {
        _ = try connection.execute(
            """
            INSERT INTO agent.intent_events (event_id, ts, session_id, actor_id, entrypoint, utterance_hash,
                semreg_mode, outcome, prompt_version, scope, subject_ref_type, verb_candidates_pre,
                verb_candidates_post, chosen_verb_fqn, selection_source,
                forced_verb_fqn, semreg_denied_verbs, macro_semreg_checked, macro_denied_verbs, error_code, extra,
                content_hash, source_topic, source_partition, source_offset)
            VALUES ($1, $2, $3, 'analyst-1', 'chat', repeat('a', 64), $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb, $11,
                $12, $13, $14::jsonb, $15::boolean, $16::jsonb, $17, $18::jsonb, 0, 'bte.intent-events.v1', 0, $19)
            """,
            [
                Self.uuid(id), ts, Self.uuid(session, "10000000"), mode, outcome, version, scope, subject, pre, post,
                chosen, selection,
                forced, denied, String(macroChecked), macroDenied, error, extra, String(id),
            ])
    }
}

@Suite(.serialized) struct IntentReviewTests {
    /// Window of the report: (2026-11-18, 2026-11-25]. E11–E13 are in a 30-day window only.
    static let until = "2026-11-25T00:00:00Z"
    static let fixture: [IntentRow] = [
        IntentRow(
            id: 1, ts: "2026-11-24T10:00:00Z", session: 1, version: "p1", outcome: "clarify_verb", scope: "cbu:1",
            subject: "entity",
            pre: #"["cbu.create","cbu.list"]"#, post: #"["cbu.list",{"verb_fqn":"cbu.create","score":0.4}]"#,
            denied: #"["cbu.delete"]"#),
        IntentRow(
            id: 2, ts: "2026-11-24T10:01:00Z", session: 1, version: "p1", outcome: "matched", scope: "cbu:1",
            subject: "entity",
            pre: #"["cbu.create","cbu.list"]"#, chosen: "cbu.list", selection: "user_choice"),
        IntentRow(
            id: 3, ts: "2026-11-24T11:00:00Z", session: 2, version: "p1", outcome: "clarify_verb", scope: "cbu:2",
            subject: "entity",
            pre: #"["cbu.list","cbu.show"]"#, denied: #"["cbu.delete","cbu.purge","cbu.delete"]"#),
        IntentRow(
            id: 4, ts: "2026-11-24T11:01:00Z", session: 2, version: "p1", outcome: "matched", scope: "cbu:2",
            subject: "entity",
            pre: #"["cbu.show","cbu.list"]"#, chosen: "cbu.list", selection: "user_choice"),
        IntentRow(
            id: 5, ts: "2026-11-23T09:00:00Z", session: 3, version: "p2", outcome: "matched", scope: "kyc",
            pre: #"["kyc.open"]"#, chosen: "kyc.close", selection: "semreg", forced: "kyc.close"),
        IntentRow(
            id: 6, ts: "2026-11-23T09:05:00Z", session: 3, version: "p2", outcome: "matched", scope: "kyc",
            pre: #"["kyc.close","kyc.open"]"#, chosen: "kyc.close", selection: "semreg", forced: "kyc.close"),
        IntentRow(
            id: 7, ts: "2026-11-22T08:00:00Z", session: 4, version: "p2", outcome: "clarify_args", scope: "cbu:3",
            subject: "entity",
            chosen: "cbu.create", extra: #"{"missing_args":["name","jurisdiction"]}"#),
        IntentRow(
            id: 8, ts: "2026-11-22T08:10:00Z", session: 4, version: "p2", outcome: "clarify_args", scope: "cbu:3",
            subject: "entity",
            chosen: "cbu.create"),
        IntentRow(
            id: 9, ts: "2026-11-21T12:00:00Z", session: 5, version: "p2", outcome: "error", mode: "fail_open",
            chosen: "macro.onboard",
            selection: "macro", macroChecked: true, macroDenied: #"["cbu.delete","kyc.purge"]"#, error: "timeout"),
        IntentRow(
            id: 10, ts: "2026-11-21T12:30:00Z", session: 5, version: nil, outcome: "no_allowed_verbs", mode: "deny_all",
            denied: #"["cbu.create"]"#, macroDenied: #"["kyc.purge"]"#),
        IntentRow(
            id: 11, ts: "2026-11-10T00:00:00Z", session: 6, version: "p1", outcome: "matched", scope: "cbu:9",
            subject: "entity",
            pre: #"["cbu.create"]"#, chosen: "cbu.list", selection: "user_choice", denied: #"["cbu.delete"]"#),
        IntentRow(
            id: 12, ts: "2026-11-15T00:00:00Z", session: 7, version: "p1", outcome: "matched", scope: "cbu:4",
            subject: "entity",
            pre: #"["cbu.list"]"#, chosen: "cbu.create", selection: "user_choice"),
        // On the window's bounds: E13 at `since` is out, E14 at `until` is in. Their denied
        // lists name no verb (empty; an empty string, no verb_fqn, a number), so deny nothing.
        IntentRow(id: 13, ts: "2026-11-18T00:00:00Z", session: 8, version: "p1", outcome: "matched", denied: "[]"),
        IntentRow(
            id: 14, ts: "2026-11-25T00:00:00Z", session: 8, version: "p2", outcome: "matched",
            denied: #"["", {"score": 1}, {"verb_fqn": 7}, {"verb_fqn": "", "score": 2}]"#),
    ]

    static func database() throws -> TestDatabase {
        let db = try TestDatabase()
        let admin = try db.admin()
        for row in fixture { try row.insert(into: admin) }
        return db
    }

    static func ts(_ text: String) -> String {
        text.replacingOccurrences(of: "T", with: " ").replacingOccurrences(of: "Z", with: "")
    }

    @Test func reviewViewsGiveTheExpectedRowsToTheReader() throws {
        let db = try Self.database()
        defer { db.drop() }
        let reader = try PostgresConnection(url: db.readerURL)
        func rows(_ sql: String) throws -> [[String?]] {
            try reader.execute("SET TIME ZONE 'UTC'")
            return try reader.execute(sql).rows
        }
        // clarify_verb: E1 offers post [list, create]; E3 has no post, so pre [list, show].
        #expect(
            try rows(
                "SELECT verb_fqn, clarify_events, ranked_first, sessions, first_seen, last_seen "
                    + "FROM agent.v_intent_top_clarify_verbs"
            ) == [
                ["cbu.list", "2", "2", "2", "2026-11-24 10:00:00+00", "2026-11-24 11:00:00+00"],
                ["cbu.create", "1", "0", "1", "2026-11-24 10:00:00+00", "2026-11-24 10:00:00+00"],
                ["cbu.show", "1", "0", "1", "2026-11-24 11:00:00+00", "2026-11-24 11:00:00+00"],
            ])
        // E5 forced kyc.close over discovery's kyc.open; E6 forced what discovery ranked first.
        #expect(
            try rows(
                "SELECT event_id::text, prompt_version, scope, discovered_verb_fqn, forced_verb_fqn, chosen_verb_fqn, "
                    + "selection_source FROM agent.v_intent_semreg_overrides"
            ) == [
                [IntentRow.uuid(5), "p2", "kyc", "kyc.open", "kyc.close", "kyc.close", "semreg"]
            ])
        // cbu.delete: E1, E3 (listed twice, counted once), E11.
        #expect(
            try rows("SELECT verb_fqn, deny_events, sessions, first_seen, last_seen FROM agent.v_intent_semreg_denies")
                == [
                    ["cbu.delete", "3", "3", "2026-11-10 00:00:00+00", "2026-11-24 11:00:00+00"],
                    ["cbu.create", "1", "1", "2026-11-21 12:30:00+00", "2026-11-21 12:30:00+00"],
                    ["cbu.purge", "1", "1", "2026-11-24 11:00:00+00", "2026-11-24 11:00:00+00"],
                ])
        // E7 names two missing args, E8 none.
        #expect(
            try rows(
                "SELECT verb_fqn, missing_arg, failures, sessions, first_seen FROM agent.v_intent_arg_fill_failures")
                == [
                    ["cbu.create", nil, "1", "1", "2026-11-22 08:10:00+00"],
                    ["cbu.create", "jurisdiction", "1", "1", "2026-11-22 08:00:00+00"],
                    ["cbu.create", "name", "1", "1", "2026-11-22 08:00:00+00"],
                ])
        // E9 was macro-checked; E10's macro_denied_verbs don't count without the check.
        #expect(
            try rows("SELECT macro_verb_fqn, denied_verb_fqn, deny_events, sessions FROM agent.v_intent_macro_denies")
                == [
                    ["macro.onboard", "cbu.delete", "1", "1"],
                    ["macro.onboard", "kyc.purge", "1", "1"],
                ])
    }

    @Test func reportNumbersMatchTheFixtureAndNeedOnlyTheReader() throws {
        let db = try Self.database()
        defer { db.drop() }
        let readerOnly = [
            "BTE_READER_DATABASE_URL": db.readerURL, "BTE_DATABASE_URL": "", "BTE_ADMIN_DATABASE_URL": "",
        ]
        let all = try BTEProcess(
            ["intents", "report", "--since", "7d", "--until", Self.until, "--format", "json"], environment: readerOnly)
        #expect(all.wait(timeout: 60) == 0, "\(all.log)")
        let report = try JSONParser.parse(Array(all.log.utf8))
        // E1–E10 and E14 are in the window: 11 events; matched E2 E4 E5 E6 E14 (5/11 = 0.4545);
        // clarify E1 E3 (verb) E7 E8 (args): 4/11 = 0.3636, 2/11 = 0.1818 each; denied E1 E3 E10:
        // 3/11 = 0.2727; not applied E9 (fail_open) E10 (deny_all): 2/11; forced E5 E6: 2/11;
        // error E9: 1/11 = 0.0909.
        #expect(
            report["totals"]
                == object([
                    ("events", 11), ("match_rate", "0.4545"), ("clarify_rate", "0.3636"),
                    ("clarify_verb_rate", "0.1818"),
                    ("clarify_args_rate", "0.1818"), ("semreg_deny_rate", "0.2727"), ("semreg_degraded_rate", "0.1818"),
                    ("forced_rate", "0.1818"), ("error_rate", "0.0909"),
                ]))
        #expect(
            list(report["failure_modes"], "outcome") == ["clarify_args", "clarify_verb", "error", "no_allowed_verbs"])
        #expect(list(report["failure_modes"], "error_code") == ["null", "null", "timeout", "null"])
        #expect(list(report["failure_modes"], "events") == ["2", "2", "1", "1"])
        #expect(list(report["hottest_verbs"], "verb_fqn") == ["cbu.create", "cbu.list", "kyc.close", "macro.onboard"])
        #expect(list(report["hottest_verbs"], "match_rate") == ["0", "1", "1", "0"])
        #expect(list(report["denied_verbs"], "verb_fqn") == ["cbu.delete", "cbu.create", "cbu.purge"])
        #expect(list(report["denied_verbs"], "events") == ["2", "1", "1"])
        #expect(list(report["clarify_verbs"], "verb_fqn") == ["cbu.list", "cbu.create", "cbu.show"])
        #expect(list(report["clarify_verbs"], "share") == ["1", "0.5", "0.5"])
        // p1: E1–E4; p2: E5–E9, E14 (matched E5 E6 E14: 3/6; error E9: 1/6 = 0.1667); no version: E10.
        #expect(list(report["prompt_versions"], "prompt_version") == ["p1", "p2", "null"])
        #expect(list(report["prompt_versions"], "events") == ["4", "6", "1"])
        #expect(list(report["prompt_versions"], "match_rate") == ["0.5", "0.5", "0"])
        #expect(list(report["prompt_versions"], "semreg_deny_rate") == ["0.5", "0", "1"])
        #expect(list(report["prompt_versions"], "error_rate") == ["0", "0.1667", "0"])

        let p2 = try BTEProcess(
            [
                "intents", "report", "--since", "2026-11-18T00:00:00Z", "--until", Self.until, "--prompt-version", "p2",
                "--format", "json",
            ], environment: readerOnly)
        #expect(p2.wait(timeout: 60) == 0, "\(p2.log)")
        let filtered = try JSONParser.parse(Array(p2.log.utf8))
        // p2 alone: E5–E9, E14; forced E5 E6: 2/6.
        #expect(filtered["totals"]?["events"] == .number("6"))
        #expect(filtered["totals"]?["forced_rate"] == .number("0.3333"))
        #expect(list(filtered["hottest_verbs"], "verb_fqn") == ["cbu.create", "kyc.close", "macro.onboard"])
        #expect(list(filtered["hottest_verbs"], "share") == ["0.3333", "0.3333", "0.1667"])
        #expect(list(filtered["denied_verbs"], "verb_fqn") == [])
        #expect(list(filtered["prompt_versions"], "events") == ["4", "6", "1"])

        let table = try BTEProcess(
            ["intents", "report", "--since", "7d", "--until", Self.until], environment: readerOnly)
        #expect(table.wait(timeout: 60) == 0)
        #expect(
            table.log.contains("events 11: matched 45.5%, clarify 36.4% (verb 18.2%, args 18.2%), SemReg deny 27.3%"),
            "\(table.log)")

        // A database nobody migrated: one line that says what to do.
        let empty = TestEnvironment.uniqueName("bte_t_empty_")
        _ = try PostgresConnection(url: try TestEnvironment.postgresBaseURL() + "/postgres").execute(
            "CREATE DATABASE \(empty)")
        defer {
            _ = try? PostgresConnection(url: try TestEnvironment.postgresBaseURL() + "/postgres").execute(
                "DROP DATABASE IF EXISTS \(empty)")
        }
        let unmigrated = try BTEProcess([
            "intents", "report", "--since", "7d", "--reader-database-url",
            try TestEnvironment.postgresBaseURL() + "/" + empty,
        ])
        #expect(unmigrated.wait(timeout: 60) == 1)
        #expect(unmigrated.log.hasPrefix("bte: error: store_schema_missing: "), "\(unmigrated.log)")
        #expect(unmigrated.log.contains("run `bte migrate`"))

        let bad = try BTEProcess(["intents", "report", "--since", "a week"], environment: readerOnly)
        #expect(bad.wait(timeout: 60) == 1)
        #expect(bad.log.hasPrefix("bte: error: invalid_duration: "))
        #expect(bad.log.split(separator: "\n").count == 1)
    }

    @Test func proposalsAreReviewedThenAppliedByAnAdminWithWhoAndWhy() throws {
        let db = try Self.database()
        defer { db.drop() }
        let role = TestEnvironment.uniqueName("bte_t_boost_")
        _ = try db.admin().execute("CREATE ROLE \(role) LOGIN IN ROLE bte_admin")
        defer {
            do {
                let admin = try db.admin()
                try admin.execute("DROP OWNED BY \(role)")
                try admin.execute("DROP ROLE \(role)")
            } catch {
                Issue.record("could not drop \(role): \(error)")
            }
        }
        let adminURL = db.adminURL.replacingOccurrences(of: "postgres@", with: "\(role)@")
        let env = ["BTE_READER_DATABASE_URL": db.readerURL, "BTE_DATABASE_URL": adminURL]
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(
            TestEnvironment.uniqueName("proposal-") + ".json"
        ).path
        defer { try? FileManager.default.removeItem(atPath: file) }

        // 30 days back: user choices in bucket cbu/entity are E2, E4, E11 (cbu.list) and E12
        // (cbu.create): 3 of 4 → 0.75, 1 of 4 → 0.25. Forced overrides: E5 in kyc/none, 1 of 1.
        // With --min-support 2 only cbu.list qualifies.
        let strict = try BTEProcess(
            ["intents", "propose-boosts", "--since", "30d", "--until", Self.until, "--min-support", "2"],
            environment: env)
        #expect(strict.wait(timeout: 60) == 0, "\(strict.log)")
        let strictRules = try JSONParser.parse(Array(strict.log.utf8))["rules"]
        #expect(list(strictRules, "verb_fqn") == ["cbu.list"])
        #expect(list(strictRules, "boost_weight") == ["0.75"])
        #expect(list(strictRules, "out_of") == ["4"])

        let propose = try BTEProcess(
            [
                "intents", "propose-boosts", "--since", "30d", "--until", Self.until, "--min-support", "1", "--output",
                file,
            ], environment: env)
        #expect(propose.wait(timeout: 60) == 0, "\(propose.log)")
        let proposal = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: file))))
        #expect(proposal["kind"] == .string("bte.verb-boost-proposal"))
        #expect(list(proposal["rules"], "scope_bucket") == ["cbu", "cbu", "kyc"])
        #expect(list(proposal["rules"], "subject_kind") == ["entity", "entity", "none"])
        #expect(list(proposal["rules"], "phase") == ["discovery", "discovery", "semreg"])
        #expect(list(proposal["rules"], "verb_fqn") == ["cbu.create", "cbu.list", "kyc.close"])
        #expect(list(proposal["rules"], "boost_weight") == ["0.25", "0.75", "1"])
        #expect(list(proposal["rules"], "current_weight") == ["null", "null", "null"])
        // Proposing changed nothing.
        #expect(try db.count("SELECT count(*) FROM agent.verb_boost_rules") == 0)

        // The reader and the ingest role can't apply; an admin can, once.
        let asReader = try BTEProcess([
            "intents", "apply-boosts", file, "--by", "ops-1", "--why", "weekly review", "--database-url", db.readerURL,
        ])
        #expect(asReader.wait(timeout: 60) == 1)
        #expect(asReader.log.contains("25006"), "\(asReader.log)")  // read-only transaction
        let asIngest = try BTEProcess([
            "intents", "apply-boosts", file, "--by", "ops-1", "--why", "weekly review", "--database-url", db.ingestURL,
        ])
        #expect(asIngest.wait(timeout: 60) == 1)
        #expect(asIngest.log.contains("42501"), "\(asIngest.log)")
        let apply = try BTEProcess(
            ["intents", "apply-boosts", file, "--by", "ops-1", "--why", "weekly review 2026-W48"], environment: env)
        #expect(apply.wait(timeout: 60) == 0, "\(apply.log)")
        #expect(apply.log.hasPrefix("applied 3 rules (proposal bp-"))
        let stored = try db.admin().execute(
            "SELECT verb_fqn, boost_weight::text, applied_by, applied_why FROM agent.verb_boost_rules ORDER BY rule_id"
        ).rows
        #expect(
            stored == [
                ["cbu.create", "0.25", "ops-1", "weekly review 2026-W48"],
                ["cbu.list", "0.75", "ops-1", "weekly review 2026-W48"],
                ["kyc.close", "1", "ops-1", "weekly review 2026-W48"],
            ])
        let again = try BTEProcess(
            ["intents", "apply-boosts", file, "--by", "ops-2", "--why", "again"], environment: env)
        #expect(again.wait(timeout: 60) == 1)
        #expect(again.log.contains("store_proposal_already_applied"), "\(again.log)")
        // An edited copy of the same proposal was made against no rules; those are in force now.
        let edited = file + ".edited"
        defer { try? FileManager.default.removeItem(atPath: edited) }
        let text = try String(contentsOfFile: file, encoding: .utf8).replacingOccurrences(
            of: "\"boost_weight\": 0.75", with: "\"boost_weight\": 0.5")
        try text.write(toFile: edited, atomically: true, encoding: .utf8)
        let stale = try BTEProcess(
            ["intents", "apply-boosts", edited, "--by", "ops-2", "--why", "old file"], environment: env)
        #expect(stale.wait(timeout: 60) == 1)
        #expect(
            stale.log.contains(
                "store_proposal_stale: cbu/entity/discovery/cbu.create was proposed against no rule but 0.25"),
            "\(stale.log)")
        #expect(try db.count("SELECT count(*) FROM agent.verb_boost_rules") == 3)

        // Rules in force are not proposed again; the log can't be rewritten.
        let next = try BTEProcess(
            ["intents", "propose-boosts", "--since", "30d", "--until", Self.until, "--min-support", "1"],
            environment: env)
        #expect(next.wait(timeout: 60) == 0)
        #expect(list(try JSONParser.parse(Array(next.log.utf8))["rules"], "verb_fqn") == [])
        let listing = try BTEProcess(["intents", "boosts"], environment: env)
        #expect(listing.wait(timeout: 60) == 0)
        #expect(listing.log.contains("cbu\tentity\tdiscovery\tcbu.list\t0.75\tbp-"))
        for statement in [
            "UPDATE agent.verb_boost_rules SET boost_weight = 0", "DELETE FROM agent.verb_boost_rules",
            "TRUNCATE agent.verb_boost_rules",
        ] {
            let error = #expect(throws: PostgresError.self) { try db.admin().execute(statement) }
            #expect(error?.sqlState == "P0001", "\(statement)")
        }
    }

    /// Only ingest may write the intent and chat logs: no other role of the product holds a
    /// write privilege on them.
    @Test func onlyTheIngestRoleMayWriteTheAgentLogs() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let admin = try db.admin()
        for table in ["agent.intent_events", "agent.chat_events"] {
            for role in ["bte_ingest", "bte_reader", "bte_admin"] {
                let canInsert =
                    try admin.execute("SELECT has_table_privilege($1, $2, 'INSERT')", [role, table]).rows.first?.first
                    ?? nil
                #expect(canInsert == (role == "bte_ingest" ? "t" : "f"), "\(role) on \(table)")
                for privilege in ["UPDATE", "DELETE", "TRUNCATE"] {
                    let can =
                        try admin.execute("SELECT has_table_privilege($1, $2, $3)", [role, table, privilege]).rows
                        .first?.first ?? nil
                    #expect(can == "f", "\(role) \(privilege) on \(table)")
                }
            }
        }
        // Boost rules: appended by bte_admin only, never rewritten; the views are for readers.
        for (role, privilege, expected) in [
            ("bte_admin", "INSERT", "t"), ("bte_reader", "INSERT", "f"), ("bte_ingest", "INSERT", "f"),
            ("bte_admin", "UPDATE", "f"), ("bte_admin", "DELETE", "f"), ("bte_admin", "TRUNCATE", "f"),
            ("bte_reader", "SELECT", "t"), ("bte_admin", "SELECT", "t"),
        ] {
            let can =
                try admin.execute("SELECT has_table_privilege($1, 'agent.verb_boost_rules', $2)", [role, privilege])
                .rows.first?.first ?? nil
            #expect(can == expected, "\(role) \(privilege) on agent.verb_boost_rules")
        }
        for view in [
            "v_intent_top_clarify_verbs", "v_intent_semreg_overrides", "v_intent_semreg_denies",
            "v_intent_arg_fill_failures", "v_intent_macro_denies",
        ] {
            for (role, expected) in [("bte_reader", "t"), ("bte_admin", "f"), ("bte_ingest", "f")] {
                let can =
                    try admin.execute("SELECT has_table_privilege($1, $2, 'SELECT')", [role, "agent." + view]).rows
                    .first?.first ?? nil
                #expect(can == expected, "\(role) on \(view)")
            }
        }
    }
}

/// `[("events", 10), ("match_rate", "0.4")]` as a JSON object of numbers.
private func object(_ members: [(String, any CustomStringConvertible)]) -> JSONValue {
    .object(members.map { (key: $0.0, value: JSONValue.number($0.1.description)) })
}

/// One field of every object in a JSON array, as text (`null` for null).
private func list(_ value: JSONValue?, _ field: String) -> [String] {
    guard case .array(let items)? = value else { return ["<not an array>"] }
    return items.map { item in
        switch item[field] {
        case .string(let text)?: return text
        case .number(let text)?: return text
        case .null?: return "null"
        case let other?: return other.canonicalString()
        case nil: return "<missing>"
        }
    }
}

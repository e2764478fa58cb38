import BTEDomain
import BTEFixtures
import BTEModels
import BTEStore
import BTETestSupport
import Foundation
import Kafka
import Postgres
import Testing

/// The KPI models end to end: a workspace's activity produced to Kafka, stored by ingest, read
/// back as daily KPIs (checked against what the stream emitted), fitted, simulated and
/// forecast by the `bte models` commands, recorded and published.
@Suite(.serialized) struct ModelsTests {
    static let yesterday = Int((Date().timeIntervalSince1970 / 86_400).rounded(.down)) - 1

    static func stream(_ topics: TestTopics) -> (ModelStream, ModelStream.Options) {
        var options = ModelStream.Options()
        options.topicPrefix = topics.prefix
        options.firstDay = yesterday - 89
        options.days = 90
        options.seed = 42
        return (ModelStream(options: options), options)
    }

    /// The runs topic, and the stream's 90 days produced and stored by ingest.
    static func ingestStream(_ db: TestDatabase, _ topics: TestTopics) throws -> ModelStream.Options {
        let admin = try KafkaAdmin(configuration: KafkaClientConfiguration(brokers: topics.brokers))
        _ = try admin.createTopics([
            KafkaNewTopic(name: topics.prefix + "bte.model-runs.v1", partitions: 3, replicationFactor: 1)
        ])
        let (stream, options) = Self.stream(topics)
        try topics.produce(stream.messages)
        _ = try ingestUntilIdle(db, topics, group: TestEnvironment.uniqueName("ingest-"), batch: 5_000)
        return options
    }

    /// percentile_cont: linear between order statistics at 0.95·(n − 1).
    static func p95(_ values: [Int]) -> Double? {
        let sorted = values.sorted().map(Double.init)
        guard !sorted.isEmpty else { return nil }
        let position = 0.95 * Double(sorted.count - 1)
        let lower = Int(position.rounded(.down))
        let upper = min(lower + 1, sorted.count - 1)
        return sorted[lower] + (position - Double(lower)) * (sorted[upper] - sorted[lower])
    }

    @Test func dailyKPIsAndTheRetentionCurveAreWhatTheStreamEmitted() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let (stream, options) = Self.stream(topics)
        try topics.produce(stream.messages)
        _ = try ingestUntilIdle(db, topics, group: TestEnvironment.uniqueName("ingest-"), batch: 5_000)
        let store = try ModelStore(url: db.ingestURL)
        let from = options.firstDay
        let to = Self.yesterday
        let rows = try store.dailyKPIs(workspaceID: options.workspace, fromDay: from, toDay: to, segment: nil)
        #expect(rows.count == 90)
        for row in rows {
            let dau = stream.active.filter { $0.day == row.day }.count
            #expect(row.dailyActiveUsers == Double(dau), "day \(row.day)")
            let cohort = stream.firstSeen.filter { $0.value == row.day }.map(\.key)
            let retained = cohort.filter { stream.active.contains(.init(user: $0, day: row.day + 7)) }.count
            let expected: Double? = row.day + 7 <= to && !cohort.isEmpty ? Double(retained) / Double(cohort.count) : nil
            #expect(row.retentionD7 == expected, "day \(row.day)")
            #expect(abs(row.revenueUSD - (stream.revenue[row.day] ?? 0)) < 1e-6, "day \(row.day)")
            let latency = Self.p95(stream.durations[row.day] ?? [])
            #expect(
                (row.latencyP95Ms == nil && latency == nil) || abs((row.latencyP95Ms ?? -1) - (latency ?? -2)) < 1e-9,
                "day \(row.day)")
        }
        // Retention by days since first seen: users whose first day + t is within the range.
        let curve = try store.retentionCurve(
            workspaceID: options.workspace, fromDay: from, toDay: to, maxDays: 30, segment: nil)
        #expect(curve.count == 30)
        for point in curve {
            let eligible = stream.firstSeen.filter { $0.value + point.day <= to }
            let retained = eligible.filter { stream.active.contains(.init(user: $0.key, day: $0.value + point.day)) }
            #expect(point.eligible == eligible.count && point.retained == retained.count, "t = \(point.day)")
        }
        // A segment of two users: only their activity counts.
        let two = Array(stream.firstSeen.keys.sorted().prefix(2))
        let segment = ModelStore.SegmentFilter(userIDs: two)
        let segmented = try store.dailyKPIs(workspaceID: options.workspace, fromDay: from, toDay: to, segment: segment)
        for row in segmented {
            #expect(
                row.dailyActiveUsers
                    == Double(stream.active.filter { $0.day == row.day && two.contains($0.user) }.count))
        }
        // The users who used iOS: their days only.
        let ios = stream.deviceUsers["ios", default: []]
        #expect(!ios.isEmpty && ios.count < stream.firstSeen.count)
        let onIOS = try store.dailyKPIs(
            workspaceID: options.workspace, fromDay: from, toDay: to, segment: .init(deviceTypes: ["ios"]))
        for row in onIOS {
            #expect(
                row.dailyActiveUsers
                    == Double(stream.active.filter { $0.day == row.day && ios.contains($0.user) }.count))
        }
        // Controls hold from each change on: rollout 0.25 from day 10, 0.5 from day 40, 0.75 from day 70.
        let (changes, incidents) = try store.controlsAndIncidents(workspaceID: options.workspace, toDay: to)
        #expect(changes.count == 3 && incidents.isEmpty)
        let u = KPISeries.controls(
            days: [from + 9, from + 10, from + 45, from + 89], names: ["rollout_pct"], changes: changes)
        #expect(u == [[0], [0.25], [0.5], [0.75]])
    }

    static func json(_ log: String) throws -> [String: Any] {
        let start = try #require(log.range(of: "\n{") ?? (log.hasPrefix("{") ? log.range(of: "{") : nil))
        let text = log[start.lowerBound...].trimmingCharacters(in: .whitespacesAndNewlines)
        return try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test func fitSimulateAndForecastThroughTheCommands() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let options = try Self.ingestStream(db, topics)
        let env = [
            "BTE_KAFKA_BROKERS": topics.brokers, "BTE_DATABASE_URL": db.ingestURL, "BTE_LOG_LEVEL": "error",
        ]
        let common = [
            "--workspace", options.workspace, "--since", "90", "--topic-prefix", topics.prefix, "--format", "json",
        ]

        // RC retention: the stream's R0 0.6, R∞ 0.25, RC 12 days, from about 1,800 users.
        let rc = try Self.json(try runBTE(["models", "fit", "--model", "rc_retention"] + common, env))
        let rcParams = try #require(rc["params"] as? [String: Any])
        let fittedRC = try #require(rcParams["RC"] as? Double)
        let rcSE = try #require(rcParams["RC_se"] as? Double)
        #expect(abs(fittedRC - 12) / 12 < 0.15, "RC \(fittedRC) ± \(rcSE)")
        #expect(abs(try #require(rcParams["R_inf"] as? Double) - 0.25) < 0.03)
        #expect(abs(try #require(rcParams["R0"] as? Double) - 0.6) < 0.05)

        // The state-space model over the same 90 days.
        let ss = try Self.json(try runBTE(["models", "fit", "--model", "state_space"] + common, env))
        let runID = try #require(ss["run_id"] as? String)
        let fit = try #require(ss["fit"] as? [String: Any])
        let trace = try #require(fit["log_likelihood_by_iteration"] as? [Double])
        for (a, b) in zip(trace, trace.dropFirst()) { #expect(b >= a - 1e-9 * abs(a)) }
        #expect((fit["observed_days"] as? Int ?? 0) > 40)

        // A plan: rollout to 1.0 from day 3 of 14. Same seed, same numbers; a forecast holds the controls.
        let plan = FileManager.default.temporaryDirectory.appendingPathComponent(
            TestEnvironment.uniqueName("plan-") + ".json")
        try Data(#"{"controls":[{},{},{"rollout_pct":1.0}]}"#.utf8).write(to: plan)
        defer { try? FileManager.default.removeItem(at: plan) }
        let simulate = [
            "models", "simulate", "--run", runID, "--horizon", "14", "--controls", plan.path, "--seed", "5",
            "--scenarios", "500", "--topic-prefix", topics.prefix, "--format", "json",
        ]
        let first = try Self.json(try runBTE(simulate, env))
        let second = try Self.json(try runBTE(simulate, env))
        let kpis = try #require(first["kpis"] as? [String: Any])
        #expect(NSDictionary(dictionary: kpis).isEqual(to: try #require(second["kpis"] as? [String: Any])))
        let rollout = try #require((first["controls"] as? [String: Any])?["rollout_pct"] as? [Double])
        #expect(rollout == [0.75, 0.75] + Array(repeating: 1.0, count: 12))
        let dau = try #require(kpis["daily_active_users"] as? [String: Any])
        for band in ["mean", "p2_5", "p10", "p90", "p97_5"] { #expect((dau[band] as? [Double])?.count == 14) }
        let p10 = try #require(dau["p10"] as? [Double])
        let p90 = try #require(dau["p90"] as? [Double])
        #expect(zip(p10, p90).allSatisfy { $0 <= $1 })
        let guardrails = try #require(first["guardrails"] as? [String: Any])
        #expect((guardrails["chance"] as? [Any])?.count == 1)

        let forecast = try Self.json(
            try runBTE(
                [
                    "models", "forecast", "--run", runID, "--horizon", "7", "--topic-prefix", topics.prefix, "--format",
                    "json",
                ],
                env))
        #expect(forecast["kind"] as? String == "forecast")
        #expect(
            (forecast["controls"] as? [String: Any])?["rollout_pct"] as? [Double] == Array(repeating: 0.75, count: 7))

        // MPC: more users within the controls' ranges, a weekly promotion budget of 1.5 days at full voltage.
        let constraints = FileManager.default.temporaryDirectory.appendingPathComponent(
            TestEnvironment.uniqueName("constraints-") + ".json")
        let text =
            #"{"targets":{"daily_active_users":1000},"weekly_budget":3000,"#
            + #""budget_coefficients":{"promo_voltage":2000}}"#
        try Data(text.utf8).write(to: constraints)
        defer { try? FileManager.default.removeItem(at: constraints) }
        let recommended = try Self.json(
            try runBTE(
                [
                    "models", "recommend", "--run", runID, "--horizon", "10", "--constraints", constraints.path,
                    "--topic-prefix", topics.prefix, "--format", "json",
                ], env))
        let planned = try #require(recommended["plan"] as? [String: [Double]])
        let promo = try #require(planned["promo_voltage"])
        #expect(promo.count == 10 && (planned["rollout_pct"] ?? []).allSatisfy { $0 >= -1e-6 && $0 <= 1 + 1e-6 })
        // The first week's spend within 3,000 (to the solver's tolerance).
        let spend: Double = promo.prefix(7).reduce(0.0, +) * 2_000
        #expect(spend <= 3_000.03, "\(spend)")
        #expect((planned["price_index"] ?? []).allSatisfy { $0 >= 0.8 - 1e-6 && $0 <= 1.2 + 1e-6 })
        #expect(recommended["active_constraints"] is [String])

        // A bandit over three rollouts: a decision, its reward (once only), and the next decision sees it.
        let actions = FileManager.default.temporaryDirectory.appendingPathComponent(
            TestEnvironment.uniqueName("actions-") + ".json")
        try Data(#"{"actions":[{"rollout_pct":0.2},{"rollout_pct":0.6},{"rollout_pct":1.0}]}"#.utf8).write(to: actions)
        defer { try? FileManager.default.removeItem(at: actions) }
        let choose = [
            "models", "bandit", "choose", "--workspace", options.workspace, "--bandit", "rollout", "--run", runID,
            "--actions", actions.path,
        ]
        let decision = try Self.json(try runBTE(choose, env))
        let decisionID = try #require(decision["decision_id"] as? String)
        #expect([0, 1, 2].contains(decision["action"] as? Int ?? -1))
        _ = try runBTE(["models", "bandit", "reward", "--decision", decisionID, "--reward", "2.5"], env)
        let again = try BTEProcess(
            ["models", "bandit", "reward", "--decision", decisionID, "--reward", "3"], environment: env)
        #expect(again.wait(timeout: 60) == 1)
        #expect(again.log.contains("already has its reward"), "\(again.log)")
        let next = try Self.json(try runBTE(choose, env))
        #expect(next["rewards_so_far"] as? Int == 1)
        #expect(try db.count("SELECT count(*) FROM bte.bandit_log") == 3)

        #expect(try db.count("SELECT count(*) FROM bte.estimate_runs") == 2)
        #expect(try db.count("SELECT count(*) FROM bte.model_configs") == 2)
        #expect(try db.count("SELECT count(*) FROM bte.simulation_runs WHERE status = 'completed'") == 4)
        let published = try topics.readAll(topics.prefix + "bte.model-runs.v1")
        #expect(published.count == 6)
        let runs = try runBTE(["models", "runs", "--workspace", options.workspace], env)
        #expect(runs.split(separator: "\n").count == 7, "\(runs)")
        // Each run by its kind; a fit over all users says so.
        let kinds = runs.split(separator: "\n").dropFirst().map { String($0.split(separator: " ").first ?? "") }
        #expect(Set(kinds) == ["estimate", "simulation", "forecast", "recommend"], "\(runs)")
        #expect(kinds.filter { $0 == "recommend" }.count == 1)
        #expect(
            runs.split(separator: "\n").filter { $0.hasPrefix("estimate") }.allSatisfy { $0.hasSuffix("all users") })
    }

    @Test func theModelsRoleCannotWriteTheLogsNorChangeRuns() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let connection = try PostgresConnection(url: db.ingestURL)
        try connection.execute("SET ROLE bte_models")
        #expect(throws: PostgresError.self) {
            try connection.execute(
                """
                INSERT INTO core.user_actions (action_id, action_type, workspace_id, actor_user_id, timestamp)
                VALUES (gen_random_uuid(), 'x', gen_random_uuid(), gen_random_uuid(), now())
                """)
        }
        try connection.execute(
            "INSERT INTO bte.estimate_runs (project_id, params, fit) VALUES ('w', '{}', '{}')")
        #expect(throws: PostgresError.self) { try connection.execute("UPDATE bte.estimate_runs SET fit = '{\"x\":1}'") }
        #expect(throws: PostgresError.self) { try connection.execute("DELETE FROM bte.estimate_runs") }
    }
}

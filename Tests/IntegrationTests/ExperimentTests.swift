import BTEDomain
import BTEModels
import BTEStore
import BTETestSupport
import Foundation
import Kafka
import Testing

/// An experiment with a known effect, confounded on purpose, through Kafka and ingest, analysed
/// by `bte models experiment`; the global holdout by `bte models holdout`.
@Suite(.serialized) struct ExperimentTests {
    static let workspace = "e0e0e0e0-1111-4222-8333-444444444444"
    static let experiment = "e1e1e1e1-1111-4222-8333-444444444444"
    static let day: Int64 = 86_400_000_000

    static func user(_ i: Int) -> String { fixtureUUID(i, prefix: "cccccccc") }

    static func event(_ id: Int, _ type: String, user: String, day: Int, hour: Int, metadata: String) -> String {
        let at = Timestamp(microseconds: Int64(day) * Self.day + Int64(hour) * 3_600_000_000).rfc3339
        let entity = type.split(separator: ".")[0]
        let entityID = entity == "experiment" ? experiment : fixtureUUID(id, prefix: "dddddddd")
        return """
            {"record_type":"business_event","event_id":"\(fixtureUUID(id, prefix: "eeeeeeee"))","event_type":"\(type)",
             "entity_type":"\(entity)","entity_id":"\(entityID)","workspace_id":"\(workspace)",
             "sub_vertical_id":"33333333-3333-4333-8333-333333333333","actor_user_id":"\(user)",
             "timestamp":"\(at)","metadata":\(metadata)}
            """
    }

    /// 384 users assigned on day A. User i was active k = i mod 4 + 1 days just before A;
    /// users with k ≥ 3 are treated 3 times in 4 ((i / 4) mod 4 ≠ 0), users with k ≤ 2 once in
    /// 4, so the treated were more active. Each orders once, 3 days after A, for
    /// 10·k + 20·treated ± 5 (+5 in even blocks of 16 users, −5 in odd ones: every block holds
    /// each (k, assignment) pair once, so the noise cancels in each arm).
    ///
    /// By hand: treated mean k = (6·3.5 + 2·1.5)/8 = 3, control mean k = (2·3.5 + 6·1.5)/8 = 2;
    /// the treated mean revenue is 10·3 + 20 = 50, the control's 10·2 = 20, so the naive
    /// difference is 30 while the effect is 20.
    static func events(assignedOn a: Int) -> [String] {
        var out: [String] = []
        var id = 0
        func next() -> Int {
            id += 1
            return id
        }
        for i in 0..<384 {
            let k = i % 4 + 1
            let treated = k >= 3 ? (i / 4) % 4 != 0 : (i / 4) % 4 == 0
            for back in 1...k {
                out.append(event(next(), "page.viewed", user: user(i), day: a - back, hour: 9, metadata: "{}"))
            }
            out.append(
                event(
                    next(), "experiment.assigned", user: user(i), day: a, hour: 12,
                    metadata: #"{"arm":"\#(treated ? "treatment" : "control")"}"#))
            let amount = 10 * k + (treated ? 20 : 0) + ((i / 16) % 2 == 0 ? 5 : -5)
            out.append(
                event(next(), "order.created", user: user(i), day: a + 3, hour: 10, metadata: #"{"amount":\#(amount)}"#)
            )
        }
        // One user assigned to both arms, one assigned too late for the window to have ended.
        out.append(
            event(next(), "experiment.assigned", user: user(900), day: a, hour: 12, metadata: #"{"arm":"control"}"#))
        out.append(
            event(next(), "experiment.assigned", user: user(900), day: a, hour: 13, metadata: #"{"arm":"treatment"}"#))
        out.append(
            event(
                next(), "experiment.assigned", user: user(901), day: a + 17, hour: 12, metadata: #"{"arm":"control"}"#))
        return out
    }

    @Test func theDRUpliftFindsTheEffectWhereTheNaiveDifferenceIsBiased() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let yesterday = ModelsTests.yesterday
        let a = yesterday - 20
        try topics.produce(
            Self.events(assignedOn: a).map {
                KafkaOutgoingMessage(
                    topic: topics.prefix + "bte.business-events.v1", key: Array(Self.workspace.utf8),
                    value: Array($0.utf8))
            })
        _ = try ingestUntilIdle(db, topics, group: TestEnvironment.uniqueName("ingest-"), batch: 5_000)
        let env = ["BTE_DATABASE_URL": db.ingestURL, "BTE_LOG_LEVEL": "error"]
        let common = ["models", "experiment", "--workspace", Self.workspace, "--experiment", Self.experiment]

        let result = try ModelsTests.json(try runBTE(common + ["--holdout-share", "0", "--format", "json"], env))
        let units = try #require(result["units"] as? [String: Int])
        #expect(
            units == [
                "assigned": 386, "conflicting": 1, "held_out": 0, "pending": 1, "analysed": 384, "treatment": 192,
                "control": 192,
            ])
        let naive = try #require(result["naive"] as? [String: Double])
        #expect(abs((naive["difference"] ?? 0) - 30) < 1e-9, "\(naive)")
        #expect(abs((naive["treatment_mean"] ?? 0) - 50) < 1e-9 && abs((naive["control_mean"] ?? 0) - 20) < 1e-9)
        let overall = try #require((result["uplift"] as? [String: Any])?["overall"] as? [String: Any])
        let uplift = try #require(overall["uplift"] as? Double)
        let lower = try #require(overall["lower95"] as? Double)
        let upper = try #require(overall["upper95"] as? Double)
        #expect(lower <= 20 && 20 <= upper && upper < 30, "DR \(uplift) [\(lower), \(upper)]")
        #expect(abs(uplift - 20) < 1, "\(uplift)")

        // Five looks in assignment order; the last one spends all of α; the effect is clear.
        let sequential = try #require(result["sequential"] as? [String: Any])
        let looks = try #require(sequential["looks"] as? [[String: Any]])
        #expect(looks.map { $0["users"] as? Int } == [77, 154, 230, 307, 384])
        #expect(abs((looks.last?["alpha_spent"] as? Double ?? 0) - 0.05) < 1e-12)
        #expect(sequential["msprt_significant"] as? Bool == true)
        #expect((sequential["msprt_p_value"] as? Double ?? 1) < 1e-6)
        // The always-valid p-value only falls from look to look.
        let ps = looks.compactMap { $0["msprt_p_value"] as? Double }
        #expect(ps.count == 5 && zip(ps, ps.dropFirst()).allSatisfy { $1 <= $0 })

        // With a 10 % holdout: exactly the users the quarter's hash holds out are left out.
        let period = Holdout.quarter(ofDay: a)
        let held = (0..<384).filter {
            Holdout.isHeldOut(workspace: Self.workspace, user: Self.user($0), period: period, share: 0.1)
        }.count
        let pendingHeld =
            Holdout.isHeldOut(
                workspace: Self.workspace, user: Self.user(901), period: Holdout.quarter(ofDay: a + 17), share: 0.1)
            ? 1 : 0
        #expect(held > 10 && held < 70, "\(held) of 384")
        let withHoldout = try ModelsTests.json(
            try runBTE(common + ["--holdout-share", "0.1", "--format", "json"], env))
        let heldUnits = try #require(withHoldout["units"] as? [String: Int])
        #expect(heldUnits["held_out"] == held + pendingHeld && heldUnits["analysed"] == 384 - held, "\(heldUnits)")

        // Assignments are not activity: nobody was active on day A (the views were before it).
        let store = try ModelStore(url: db.ingestURL)
        let kpis = try store.dailyKPIs(workspaceID: Self.workspace, fromDay: a - 1, toDay: a, segment: nil)
        // Day A−1: every user (k ≥ 1 includes A−1); day A: none.
        #expect(kpis.map(\.dailyActiveUsers) == [384, 0])

        // The holdout command agrees with the hash for a user, and counts the quarter's users.
        let member = try ModelsTests.json(
            try runBTE(
                [
                    "models", "holdout", "--workspace", Self.workspace, "--share", "0.1", "--day", ModelJSON.date(a),
                    "--user", Self.user(0),
                ], env))
        #expect(
            member["held_out"] as? Bool
                == Holdout.isHeldOut(workspace: Self.workspace, user: Self.user(0), period: period, share: 0.1))
        // A held-out user's id typed in capitals is the same user.
        let heldUser = try #require(
            (0..<384).first {
                Holdout.isHeldOut(workspace: Self.workspace, user: Self.user($0), period: period, share: 0.1)
            })
        let capitals = try ModelsTests.json(
            try runBTE(
                [
                    "models", "holdout", "--workspace", Self.workspace, "--share", "0.1", "--day", ModelJSON.date(a),
                    "--user", Self.user(heldUser).uppercased(),
                ], env))
        #expect(capitals["held_out"] as? Bool == true)
        var quarterStart = a
        while Holdout.quarter(ofDay: quarterStart - 1) == period { quarterStart -= 1 }
        // Users with a view on or after the quarter's first day (user i viewed A−1 … A−k).
        let active = (0..<384).filter { a - ($0 % 4 + 1) >= quarterStart || a - 1 >= quarterStart }
        let summary = try ModelsTests.json(
            try runBTE(
                ["models", "holdout", "--workspace", Self.workspace, "--share", "0.1", "--day", ModelJSON.date(a)], env)
        )
        #expect(summary["active_users"] as? Int == active.count)
        #expect(
            summary["held_out_users"] as? Int
                == active.filter {
                    Holdout.isHeldOut(workspace: Self.workspace, user: Self.user($0), period: period, share: 0.1)
                }.count)
        #expect(summary["next_refresh"] as? String != nil && summary["period"] as? String != nil)
    }
}

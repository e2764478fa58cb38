import BTEDomain
import PropertyBased
import Testing

@testable import BTECompute

/// The delivery rules on hand-built streams; every expected decision is worked out in the
/// comments from the defaults (spacing 30 s, interrupts 15 min apart, busy 2 s, pause 10 s,
/// deferral 120 s, dwell 30 s, 3 a session, 6 a day, 20 a week, dismissals 72 h, mute 30 days).
@Suite struct InsightDeliveryTests {
    static let ws = "11111111-2222-4333-8444-555555555555"
    static let u1 = "aaaaaaaa-0000-4000-8000-000000000001"
    static let u2 = "aaaaaaaa-0000-4000-8000-000000000002"
    static let d1 = "dddddddd-0000-4000-8000-000000000001"
    static let c9 = "cccccccc-0000-4000-8000-000000000009"

    static func insight(
        _ type: InsightType, _ priority: InsightPriority, _ message: String = "m", evidence: [String: String] = [:]
    ) -> CurrentInsight {
        CurrentInsight(
            id: "id-\(type.rawValue)-\(message)",
            insight: Insight(type: type, priority: priority, message: message, evidence: evidence))
    }

    static let stalled = insight(.dealStalled, .medium, evidence: ["deal_ids": "[\"\(d1)\"]", "stalled_deals": "1"])
    static let repeatBuyer = insight(.repeatCustomer, .medium, evidence: ["top_customer_id": "\"\(c9)\""])
    static let nextBest = insight(.nextBestAction, .low)
    static let cycle = insight(.salesCycleVariance, .medium)
    static let drop = insight(.engagementDrop, .medium)

    /// Feeds events (seconds since an origin) through one engine; returns every decision.
    struct Stream {
        var engine = DeliveryEngine(workspaceID: InsightDeliveryTests.ws)
        var rules = DeliveryRules(thresholds: Thresholds())
        var insights: [CurrentInsight] = [stalled, repeatBuyer, nextBest]
        var decisions: [DeliveryDecision] = []
        var n = 0

        /// Without dwells (they have a test of their own).
        static func withoutDwell() -> Stream {
            var stream = Stream()
            stream.rules.dwell = 366 * DeliveryRules.day
            return stream
        }

        mutating func send(_ type: String, _ user: String, at seconds: Int64, _ metadata: [(String, JSONValue)] = [])
            -> [DeliveryDecision]
        {
            n += 1
            let event = BusinessEvent(
                eventID: "e\(n)", eventType: type, entityID: "ffffffff-0000-4000-8000-00000000000\(n % 10)",
                workspaceID: InsightDeliveryTests.ws, subVerticalID: "s", actorUserID: user,
                timestamp: Timestamp(microseconds: seconds * 1_000_000),
                metadata: .object(metadata.map { (key: $0.0, value: $0.1) }))
            // As the projector does: timers before the event with the insights before it (here
            // the same list), then the event.
            let current = insights
            var made = engine.advance(to: seconds * 1_000_000, insights: { current }, rules: rules)
            made += engine.observe(event, asOf: seconds * 1_000_000, insights: { current }, rules: rules)
            decisions += made
            return made
        }

        mutating func page(_ user: String, at seconds: Int64, _ subjectType: String, _ subjectID: String)
            -> [DeliveryDecision]
        {
            send(
                "page.viewed", user, at: seconds,
                [("subject_type", .string(subjectType)), ("subject_id", .string(subjectID))])
        }

        mutating func search(_ user: String, at seconds: Int64) -> [DeliveryDecision] {
            send("search.performed", user, at: seconds, [("query_hash", .string(String(repeating: "a", count: 64)))])
        }

        mutating func feedback(_ user: String, at seconds: Int64, _ verdict: String, _ type: InsightType)
            -> [DeliveryDecision]
        {
            send(
                "insight.feedback", user, at: seconds,
                [("verdict", .string(verdict)), ("insight_type", .string(type.rawValue))])
        }
    }

    static func summary(_ decisions: [DeliveryDecision]) -> [String] {
        decisions.map {
            "\($0.decidedAt / 1_000_000) \($0.userID == u1 ? "u1" : "u2") \($0.trigger.kind.rawValue) "
                + "\($0.insightType.rawValue) \($0.mode.rawValue) \($0.outcome.rawValue) \($0.reason)"
        }
    }

    @Test func theInsightAboutTheSubjectThenTheContextAtOnceAndSpaced() {
        var s = Stream.withoutDwell()
        // A deal page: deal_stalled names d1, so it wins; medium priority is an ambient card, at once.
        // A search 100 s later: its context is next_best_action (low, but in context).
        // Another search 10 s after that: next_best_action was just shown (seen, and its type
        // today); deal_stalled is not relevant to a search (medium, outside the context), so the
        // best relevant one is reported suppressed.
        // A customer page 40 s later (30 s spacing passed): repeat_customer names c9.
        _ = s.page(Self.u1, at: 1_000, "deal", Self.d1)
        _ = s.search(Self.u1, at: 1_100)
        _ = s.search(Self.u1, at: 1_110)
        _ = s.page(Self.u1, at: 1_150, "customer", Self.c9)
        #expect(
            Self.summary(s.decisions) == [
                "1000 u1 page_view deal_stalled ambient delivered at_once",
                "1100 u1 search next_best_action ambient delivered at_once",
                "1110 u1 search next_best_action ambient suppressed seen",
                "1150 u1 page_view repeat_customer ambient delivered at_once",
            ])
        // 20 s later another deal page: deal_stalled was seen unchanged; spacing is not even
        // reached because nothing eligible is left.
        #expect(
            Self.summary(s.page(Self.u1, at: 1_170, "deal", Self.d1)) == [
                "1170 u1 page_view deal_stalled ambient suppressed seen"
            ])
        // u2 has seen nothing: the same page at once, and u1's history is not u2's.
        #expect(
            Self.summary(s.page(Self.u2, at: 1_171, "deal", Self.d1)) == [
                "1171 u2 page_view deal_stalled ambient delivered at_once"
            ])
        // The insight changes (a second stalled deal) and a day has passed: shown again.
        s.insights[0] = Self.insight(
            .dealStalled, .medium, "two", evidence: ["deal_ids": "[\"\(Self.d1)\",\"x\"]", "stalled_deals": "2"])
        #expect(
            Self.summary(s.page(Self.u1, at: 1_000 + 86_400, "deal", Self.d1)) == [
                "87400 u1 page_view deal_stalled ambient delivered at_once"
            ])
        // Within 30 s of a delivery, a new relevant insight is spaced out.
        s.insights.append(Self.cycle)
        #expect(
            Self.summary(s.page(Self.u1, at: 87_410, "pipeline", Self.d1)) == [
                "87410 u1 page_view sales_cycle_variance ambient suppressed spacing"
            ])
    }

    @Test func anInterruptWaitsForABreakpointAndNeverInterruptsTheBusy() {
        var s = Stream.withoutDwell()
        s.insights = [Self.insight(.dealStalled, .high, evidence: ["deal_ids": "[\"\(Self.d1)\"]"])]
        // u1 starts a workflow at 200 s and opens the deal 1 s later: high priority is an
        // interrupt, and the user is mid-task (previous event 1 s ago < 10 s pause): it waits,
        // at most until 201 + 120 = 321.
        _ = s.send("workflow.started", Self.u1, at: 200)
        #expect(s.page(Self.u1, at: 201, "deal", Self.d1).isEmpty)
        // Completing the workflow 1 s later is a breakpoint, but the user is busy (1 s < 2 s).
        #expect(s.send("workflow.completed", Self.u1, at: 202).isEmpty)
        // Another user's event at 260 s passes u1's pause, 202 + 10 = 212: delivered then.
        #expect(
            Self.summary(s.send("workflow.started", Self.u2, at: 260)) == [
                "212 u1 page_view deal_stalled interrupt delivered pause"
            ])

        // A breakpoint with the user not busy: delivered at it.
        var b = Stream.withoutDwell()
        b.insights = s.insights
        _ = b.send("workflow.started", Self.u1, at: 200)
        _ = b.page(Self.u1, at: 201, "deal", Self.d1)
        #expect(
            Self.summary(b.send("workflow.completed", Self.u1, at: 205)) == [
                "205 u1 page_view deal_stalled interrupt delivered breakpoint"
            ])
        // A day later (past the type's daily cap) the insight has changed: the user comes back
        // from a pause, so it interrupts at once.
        b.insights = [Self.insight(.dealStalled, .high, "2", evidence: ["deal_ids": "[\"\(Self.d1)\"]"])]
        #expect(
            Self.summary(b.page(Self.u1, at: 805 + 86_400, "deal", Self.d1)) == [
                "87205 u1 page_view deal_stalled interrupt delivered pause"
            ])
        // 60 s later another high insight: within 15 minutes of that interrupt, so a card.
        b.insights.append(Self.insight(.salesCycleVariance, .high))
        #expect(
            Self.summary(b.page(Self.u1, at: 87_265, "pipeline", Self.d1)) == [
                "87265 u1 page_view sales_cycle_variance ambient delivered at_once"
            ])
    }

    @Test func aFinishedIntentIsABreakpointAndOneNamingAnEntityATrigger() {
        var s = Stream.withoutDwell()
        s.insights = [Self.insight(.dealStalled, .high, evidence: ["deal_ids": "[\"\(Self.d1)\"]"])]
        func intent(_ at: Int64, _ outcome: String, _ subject: (String, String)? = nil) -> [DeliveryDecision] {
            var metadata: [(String, JSONValue)] = [("outcome", .string(outcome))]
            if let subject { metadata += [("subject_type", .string(subject.0)), ("subject_id", .string(subject.1))] }
            return s.send("intent.resolved", Self.u1, at: at, metadata)
        }
        // The deal page 1 s into a workflow: a high insight waits for a breakpoint (deadline 321).
        _ = s.send("workflow.started", Self.u1, at: 200)
        #expect(s.page(Self.u1, at: 201, "deal", Self.d1).isEmpty)
        // An intent finished 1 s later: the user is busy (1 s < 2 s).
        #expect(intent(202, "matched").isEmpty)
        // A question back to the user 4 s later is no finished intent.
        #expect(intent(206, "clarify_args").isEmpty)
        // A finished intent 3 s after that (not busy, before the pause at 206 + 10 = 216): delivered at it.
        #expect(
            Self.summary(intent(209, "matched")) == [
                "209 u1 page_view deal_stalled interrupt delivered finished_intent"
            ])

        // An intent naming a customer shows the insight about it; one naming the deal, 40 s
        // later (past the 30 s spacing), the deal's; a question naming nothing shows nothing.
        var n = Stream.withoutDwell()
        n.insights = [Self.stalled, Self.repeatBuyer, Self.nextBest]
        s = n
        #expect(
            Self.summary(intent(1_000, "matched", ("customer", Self.c9)))
                == ["1000 u1 intent repeat_customer ambient delivered at_once"])
        #expect(
            Self.summary(intent(1_040, "error", ("deal", Self.d1.uppercased())))
                == ["1040 u1 intent deal_stalled ambient delivered at_once"])
        #expect(intent(1_100, "clarify_verb").isEmpty)
    }

    @Test func aUserWhoWithdrewConsentGetsNoDecisionUntilTheyGrantItAgain() {
        func consent(_ s: inout Stream, _ type: String, _ user: String, at: Int64, _ purpose: String)
            -> [DeliveryDecision]
        {
            s.send(type, user, at: at, [("purpose", .string(purpose))])
        }
        var s = Stream.withoutDwell()
        #expect(consent(&s, "consent.withdrawn", Self.u1, at: 100, "in_context_insights").isEmpty)
        // No decision for u1, not even a suppression; u2 is not concerned.
        #expect(s.page(Self.u1, at: 200, "deal", Self.d1).isEmpty)
        #expect(
            Self.summary(s.page(Self.u2, at: 201, "deal", Self.d1)) == [
                "201 u2 page_view deal_stalled ambient delivered at_once"
            ])
        // Another purpose changes nothing here; granted again, u1's next page decides as usual.
        _ = consent(&s, "consent.granted", Self.u1, at: 250, "analytics")
        #expect(s.search(Self.u1, at: 260).isEmpty)
        #expect(consent(&s, "consent.granted", Self.u1, at: 300, "in_context_insights").isEmpty)
        #expect(
            Self.summary(s.page(Self.u1, at: 400, "deal", Self.d1)) == [
                "400 u1 page_view deal_stalled ambient delivered at_once"
            ])

        // An interrupt waiting for a breakpoint is dropped with the consent: nothing at its
        // deadline (201 + 120 = 321) nor at a pause.
        var p = Stream.withoutDwell()
        p.insights = [Self.insight(.dealStalled, .high, evidence: ["deal_ids": "[\"\(Self.d1)\"]"])]
        _ = p.send("workflow.started", Self.u1, at: 200)
        #expect(p.page(Self.u1, at: 201, "deal", Self.d1).isEmpty)
        #expect(consent(&p, "consent.withdrawn", Self.u1, at: 205, "in_context_insights").isEmpty)
        #expect(p.send("workflow.started", Self.u2, at: 400).isEmpty)
    }

    @Test func theUsersContextShapesTheChoiceAndTheModeAndIsOnTheRecord() {
        // A search's context is next_best_action. Comparing asks for sales_cycle_variance and
        // repeat_customer first: both medium, unchanged since the same instant, so by name:
        // repeat_customer. Without an intent the search shows next_best_action.
        var s = Stream.withoutDwell()
        s.insights = [Self.stalled, Self.repeatBuyer, Self.nextBest, Self.cycle]
        let hash: JSONValue = .string(String(repeating: "a", count: 64))
        #expect(
            Self.summary(
                s.send(
                    "search.performed", Self.u1, at: 100, [("query_hash", hash), ("userIntent", .string("comparing"))]))
                == ["100 u1 search repeat_customer ambient delivered at_once"])
        #expect(
            Self.summary(s.search(Self.u2, at: 100)) == ["100 u2 search next_best_action ambient delivered at_once"])

        // A high insight would interrupt a user back from a pause; in a personal context it is
        // an ambient card.
        var p = Stream.withoutDwell()
        p.insights = [Self.insight(.dealStalled, .high, evidence: ["deal_ids": "[\"\(Self.d1)\"]"])]
        let subject: [(String, JSONValue)] = [("subject_type", .string("deal")), ("subject_id", .string(Self.d1))]
        let personal: [(String, JSONValue)] = [
            ("tier", .number("2")), ("department", .string("sales")), ("personalContext", .bool(true)),
            ("userIntent", .string("comparing")),
        ]
        let made = p.send("page.viewed", Self.u1, at: 1_000, subject + personal)
        #expect(Self.summary(made) == ["1000 u1 page_view deal_stalled ambient delivered at_once"])
        #expect(
            Self.summary(p.page(Self.u2, at: 1_000, "deal", Self.d1))
                == ["1000 u2 page_view deal_stalled interrupt delivered pause"])
        // The context travels with the record, in a fixed order.
        let record = String(decoding: made.first?.json(thresholdsVersion: 2) ?? [], as: UTF8.self)
        #expect(
            record.contains(
                #""at":"1970-01-01T00:16:40.000000Z","context":{"tier":2,"department":"sales","#
                    + #""personal_context":true,"user_intent":"comparing"}},"decided_at""#), "\(record)")
        // Without context there is no member.
        #expect(!String(decoding: s.decisions[1].json(thresholdsVersion: 2), as: UTF8.self).contains("context"))
    }

    @Test func aDeferredInterruptBecomesACardWhenNoBreakpointComes() {
        var s = Stream.withoutDwell()
        s.insights = [Self.insight(.dealStalled, .high, evidence: ["deal_ids": "[\"\(Self.d1)\"]"])]
        _ = s.send("workflow.started", Self.u1, at: 200)
        _ = s.page(Self.u1, at: 201, "deal", Self.d1)
        // Busy every 5 s (never a 10 s pause, no breakpoint) until 330: the deadline 321 passes
        // and the insight goes as an ambient card at 321, seen by the event at 325.
        var made: [DeliveryDecision] = []
        for t in stride(from: Int64(205), through: 330, by: 5) { made += s.send("workflow.started", Self.u1, at: t) }
        #expect(Self.summary(made) == ["321 u1 page_view deal_stalled ambient delivered deferral_expired"])
        // A second interrupt trigger while one waits is suppressed.
        var p = Stream.withoutDwell()
        p.insights = s.insights + [Self.insight(.salesCycleVariance, .high)]
        _ = p.send("workflow.started", Self.u1, at: 200)
        _ = p.page(Self.u1, at: 201, "deal", Self.d1)
        #expect(
            Self.summary(p.page(Self.u1, at: 203, "pipeline", Self.d1)) == [
                "203 u1 page_view sales_cycle_variance interrupt suppressed interrupt_pending"
            ])
    }

    @Test func aDwellOnAPageIsATriggerWhenTheWorkspaceTimePassesIt() {
        var s = Stream()
        s.insights = [Self.repeatBuyer, Self.nextBest]
        // u1 opens the customer at 1,000: repeat_customer at once. Nothing more from u1; u2's
        // event at 1,040 passes 1,000 + 30: a dwell on the same page. repeat_customer (about c9)
        // was seen; a dwell's context is next_best_action; 30 s since the last delivery is enough.
        _ = s.page(Self.u1, at: 1_000, "customer", Self.c9)
        #expect(
            Self.summary(s.send("workflow.started", Self.u2, at: 1_040)) == [
                "1030 u1 dwell next_best_action ambient delivered at_once"
            ])
        // Any event of u1 before the dwell's end cancels it.
        var t = Stream()
        t.insights = s.insights
        _ = t.page(Self.u1, at: 1_000, "customer", Self.c9)
        _ = t.send("workflow.started", Self.u1, at: 1_020)
        #expect(t.send("workflow.started", Self.u2, at: 1_100).isEmpty)
    }

    @Test func capsMutesDismissalsAndFatigue() {
        // 3 a session: the fourth relevant trigger of the session, 60 s after the third.
        var s = Stream.withoutDwell()
        s.insights = [Self.stalled, Self.repeatBuyer, Self.nextBest, Self.cycle]
        _ = s.page(Self.u1, at: 0, "deal", Self.d1)
        _ = s.page(Self.u1, at: 60, "customer", Self.c9)
        _ = s.search(Self.u1, at: 120)
        #expect(
            Self.summary(s.page(Self.u1, at: 180, "pipeline", Self.d1)) == [
                "180 u1 page_view sales_cycle_variance ambient suppressed session_cap"
            ])
        // After 30 minutes without an event a new session starts: shown.
        #expect(
            Self.summary(s.page(Self.u1, at: 180 + 1_800, "pipeline", Self.d1)) == [
                "1980 u1 page_view sales_cycle_variance ambient delivered at_once"
            ])

        // not_useful mutes the type for 30 days, whatever the content.
        var m = Stream.withoutDwell()
        _ = m.feedback(Self.u1, at: 0, "not_useful", .dealStalled)
        #expect(
            Self.summary(m.page(Self.u1, at: 100, "deal", Self.d1)) == [
                "100 u1 page_view deal_stalled ambient suppressed muted"
            ])
        m.insights[0] = Self.insight(.dealStalled, .medium, "new", evidence: ["deal_ids": "[\"\(Self.d1)\"]"])
        #expect(
            Self.summary(m.page(Self.u1, at: 30 * 86_400 - 1, "deal", Self.d1)) == [
                "2591999 u1 page_view deal_stalled ambient suppressed muted"
            ])
        #expect(
            Self.summary(m.page(Self.u1, at: 30 * 86_400, "deal", Self.d1)) == [
                "2592000 u1 page_view deal_stalled ambient delivered at_once"
            ])

        // A dismissal keeps the type away 72 h; three of them in a week halve the caps: 6 a day
        // becomes 3, so with a session cap out of the way the fourth delivery of the day is capped.
        var f = Stream.withoutDwell()
        f.rules.perSession = 100
        f.insights = [Self.stalled, Self.repeatBuyer, Self.nextBest, Self.cycle, Self.drop]
        _ = f.feedback(Self.u1, at: 0, "dismissed", .engagementDrop)
        _ = f.feedback(Self.u1, at: 1, "dismissed", .engagementDrop)
        _ = f.feedback(Self.u1, at: 2, "dismissed", .engagementDrop)
        _ = f.page(Self.u1, at: 100, "deal", Self.d1)  // deal_stalled
        _ = f.page(Self.u1, at: 200, "customer", Self.c9)  // repeat_customer (engagement_drop dismissed)
        _ = f.search(Self.u1, at: 300)  // next_best_action
        #expect(
            Self.summary(f.page(Self.u1, at: 400, "pipeline", Self.d1)) == [
                "400 u1 page_view sales_cycle_variance ambient suppressed daily_cap"
            ])
        #expect(
            Self.summary(f.decisions.filter { $0.insightType == .repeatCustomer }) == [
                "200 u1 page_view repeat_customer ambient delivered at_once"
            ])
    }

    @Test func heldOutUsersGetARecordedDeliveryThatIsNeverSent() {
        var s = Stream()
        s.rules.holdoutPercent = 100
        #expect(
            Self.summary(s.page(Self.u1, at: 0, "deal", Self.d1)) == [
                "0 u1 page_view deal_stalled ambient control holdout"
            ])
        // A control delivery counts for no cap or spacing: the same page 1 s later decides the same.
        #expect(
            Self.summary(s.page(Self.u1, at: 1, "deal", Self.d1)) == [
                "1 u1 page_view deal_stalled ambient control holdout"
            ])
        // The share is stable per (workspace, user): 0 % holds no one out.
        #expect(!DeliveryEngine.heldOut(Self.ws, Self.u1, percent: 0))
        #expect(DeliveryEngine.heldOut(Self.ws, Self.u1, percent: 100))
    }

    @Test func theRecordHasItsFieldsInAFixedOrder() throws {
        var s = Stream()
        let decision = try #require(s.page(Self.u1, at: 1_000, "deal", Self.d1).first)
        let id = UUIDv5.make(name: "delivery|\(Self.ws)|\(Self.u1)|page_view|e1")
        #expect(
            String(decoding: decision.json(thresholdsVersion: 3), as: UTF8.self)
                == "{\"id\":\"\(id)\",\"workspace_id\":\"\(Self.ws)\",\"user_id\":\"\(Self.u1)\","
                + "\"insight_id\":\"id-deal_stalled-m\",\"insight_type\":\"deal_stalled\",\"priority\":\"medium\","
                + "\"message\":\"m\",\"mode\":\"ambient\",\"outcome\":\"delivered\",\"reason\":\"at_once\","
                + "\"trigger\":{\"kind\":\"page_view\",\"event_id\":\"e1\",\"subject_type\":\"deal\","
                + "\"subject_id\":\"\(Self.d1)\",\"at\":\"1970-01-01T00:16:40.000000Z\"},"
                + "\"decided_at\":\"1970-01-01T00:16:40.000000Z\",\"thresholds_version\":3,"
                + "\"engine_version\":\"\(engineVersion)\"}")
    }

    @Test func theDeliveryThresholdsAreKnownAndBounded() {
        let rules = DeliveryRules(thresholds: Thresholds())
        #expect(rules.minSpacing == 30_000_000 && rules.sessionGap == 1_800_000_000 && rules.mute == 2_592_000_000_000)
        #expect(rules.holdoutPercent == 0 && rules.perDay == 6)
        // An absurd threshold is bounded to a year, so no time sum can overflow.
        let huge = DeliveryRules(thresholds: Thresholds(values: ["delivery.mute_days": 1e300]))
        #expect(huge.mute == 366 * 86_400 * 1_000_000)
    }

    /// Random streams of triggers, breakpoints, feedback and changing insights: deliveries keep
    /// their spacing and caps, decisions come in time order, one per (user, trigger) at most,
    /// and the same stream decides the same.
    @Test func randomStreamsKeepTheRules() async {
        await propertyCheck(count: 300, input: Gen.int64(in: 0...Int64.max)) { seed in
            var rng = SplitMix(state: UInt64(seed))
            let users = [Self.u1, Self.u2, "aaaaaaaa-0000-4000-8000-000000000003"]
            let pool: [CurrentInsight] = [
                Self.stalled, Self.repeatBuyer, Self.nextBest, Self.cycle, Self.drop,
                Self.insight(.dealStalled, .high, "h", evidence: ["deal_ids": "[\"\(Self.d1)\"]"]),
                Self.insight(.engagementDrop, .high, "h2"),
            ]
            var script: [(Int, String, Int64, [CurrentInsight])] = []
            var t: Int64 = 0
            for _ in 0..<120 {
                t += Int64.random(in: 0...90, using: &rng)
                let insights = pool.filter { _ in Bool.random(using: &rng) }
                script.append(
                    (Int.random(in: 0..<8, using: &rng), users.randomElement(using: &rng) ?? Self.u1, t, insights))
            }
            func run() -> [DeliveryDecision] {
                var stream = Stream()
                for (kind, user, at, insights) in script {
                    stream.insights = insights
                    switch kind {
                    case 0: _ = stream.page(user, at: at, "deal", Self.d1)
                    case 1: _ = stream.page(user, at: at, "customer", Self.c9)
                    case 2: _ = stream.page(user, at: at, "pipeline", Self.d1)
                    case 3: _ = stream.search(user, at: at)
                    case 4: _ = stream.send("workflow.completed", user, at: at)
                    case 5: _ = stream.feedback(user, at: at, "dismissed", .engagementDrop)
                    case 6: _ = stream.feedback(user, at: at, "not_useful", .nextBestAction)
                    default: _ = stream.send("workflow.started", user, at: at)
                    }
                }
                return stream.decisions
            }
            let decisions = run()
            #expect(decisions == run(), "seed \(seed)")
            #expect(decisions.contains { $0.outcome == .delivered }, "seed \(seed): the stream delivers")
            let rules = DeliveryRules(thresholds: Thresholds())
            #expect(Set(decisions.map(\.id)).count == decisions.count, "seed \(seed): one decision per trigger")
            for user in users {
                let mine = decisions.filter { $0.userID == user }
                #expect(zip(mine, mine.dropFirst()).allSatisfy { $0.decidedAt <= $1.decidedAt }, "seed \(seed)")
                let sent = mine.filter { $0.outcome == .delivered }.map(\.decidedAt)
                #expect(zip(sent, sent.dropFirst()).allSatisfy { $1 - $0 >= rules.minSpacing }, "seed \(seed)")
                for time in sent {
                    #expect(sent.filter { $0 <= time && time - $0 < DeliveryRules.day }.count <= rules.perDay)
                }
                let interrupts = mine.filter { $0.outcome == .delivered && $0.mode == .interrupt }.map(\.decidedAt)
                #expect(zip(interrupts, interrupts.dropFirst()).allSatisfy { $1 - $0 >= rules.interruptSpacing })
            }
        }
    }

    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}

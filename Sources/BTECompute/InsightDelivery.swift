import BTEDomain

/// The rules of in-context delivery, from the thresholds (`delivery.*`): when an insight may be
/// shown to a user, how often, and when it must wait. Times in microseconds.
public struct DeliveryRules: Sendable, Equatable {
    static let second: Int64 = 1_000_000
    static let hour = 3_600 * second
    static let day = 24 * hour

    /// Between two deliveries to a user (Braze: one triggered message per 30 s).
    public var minSpacing: Int64
    /// Between two interrupts to a user (Pendo's example throttle: 15 minutes).
    public var interruptSpacing: Int64
    /// A user whose previous event is this recent is busy: no interrupt.
    public var busy: Int64
    /// No event by the user for this long is a pause: a breakpoint.
    public var pause: Int64
    /// An interrupt waits at most this long for a breakpoint, then goes as an ambient card.
    public var maxDeferral: Int64
    /// No other event by the user this long after a page view with a subject is a dwell.
    public var dwell: Int64
    /// A gap this long between a user's events starts a new session.
    public var sessionGap: Int64
    public var perSession: Int
    public var perDay: Int
    public var perWeek: Int
    /// A dismissed insight type is not shown to that user again for this long.
    public var dismissSuppression: Int64
    /// This many dismissals within 7 days halve the user's caps.
    public var fatigueDismissals: Int
    /// `not_useful` mutes the insight type for the user this long.
    public var mute: Int64
    /// Share of users (0–100) held out: their deliveries are recorded, never sent.
    public var holdoutPercent: Double

    public static let defaults: [String: Double] = [
        "delivery.min_spacing_seconds": 30, "delivery.interrupt_spacing_seconds": 900, "delivery.busy_seconds": 2,
        "delivery.pause_seconds": 10, "delivery.max_deferral_seconds": 120, "delivery.dwell_seconds": 30,
        "delivery.session_gap_minutes": 30, "delivery.max_per_session": 3, "delivery.max_per_day": 6,
        "delivery.max_per_week": 20, "delivery.dismiss_suppression_hours": 72, "delivery.fatigue_dismissals": 3,
        "delivery.mute_days": 30, "delivery.holdout_percent": 0,
    ]

    public init(thresholds: Thresholds) {
        // Thresholds are finite; a year bounds every span, so no sum of times can overflow.
        func seconds(_ key: String, per unit: Double = 1) -> Int64 {
            Int64((min(max(thresholds.value(key) * unit, 0), 366 * 86_400) * 1e6).rounded())
        }
        func count(_ key: String) -> Int { Int(min(max(thresholds.value(key), 0), 1_000_000)) }
        minSpacing = seconds("delivery.min_spacing_seconds")
        interruptSpacing = seconds("delivery.interrupt_spacing_seconds")
        busy = seconds("delivery.busy_seconds")
        pause = seconds("delivery.pause_seconds")
        maxDeferral = seconds("delivery.max_deferral_seconds")
        dwell = seconds("delivery.dwell_seconds")
        sessionGap = seconds("delivery.session_gap_minutes", per: 60)
        perSession = count("delivery.max_per_session")
        perDay = count("delivery.max_per_day")
        perWeek = count("delivery.max_per_week")
        dismissSuppression = seconds("delivery.dismiss_suppression_hours", per: 3_600)
        fatigueDismissals = count("delivery.fatigue_dismissals")
        mute = seconds("delivery.mute_days", per: 86_400)
        holdoutPercent = min(max(thresholds.value("delivery.holdout_percent"), 0), 100)
    }
}

/// Each workspace's delivery rules: the shared ones, or its own where it set any.
public struct DeliveryRuleBook: Sendable {
    let shared: DeliveryRules
    let own: [String: DeliveryRules]

    public init(thresholds: Thresholds) {
        shared = DeliveryRules(thresholds: thresholds)
        own = Dictionary(
            uniqueKeysWithValues: thresholds.workspaces.keys.map {
                ($0, DeliveryRules(thresholds: thresholds.of(workspace: $0)))
            })
    }

    public subscript(workspace: String) -> DeliveryRules { own[workspace] ?? shared }
}

/// Seed 003's context of the user at a trigger (the trigger event's metadata): their tier,
/// department, whether they are in a personal context, and what they are trying to do.
public struct UserContext: Sendable, Equatable {
    public var tier: Int?
    public var department: String?
    public var personal: Bool?
    public var intent: String?

    public init(tier: Int? = nil, department: String? = nil, personal: Bool? = nil, intent: String? = nil) {
        self.tier = tier
        self.department = department
        self.personal = personal
        self.intent = intent
    }

    /// Read from an event's metadata (checked at ingest; anything else is left out).
    init(_ event: BusinessEvent) {
        if case .number(let text)? = event.metadata["tier"] { tier = Int(text) }
        department = event.string("department")
        if case .bool(let flag)? = event.metadata["personalContext"] { personal = flag }
        intent = event.string("userIntent")
    }

    public var isEmpty: Bool { tier == nil && department == nil && personal == nil && intent == nil }

    /// The insight types a user's intent asks for first.
    var preferred: [InsightType] {
        switch intent {
        case "troubleshooting": return [.engagementDrop, .dealStalled]
        case "comparing": return [.salesCycleVariance, .repeatCustomer]
        case "researching": return [.nextBestAction, .repeatCustomer]
        case "exploring": return [.nextBestAction]
        default: return []
        }
    }

    /// The present members in a fixed order.
    var json: String {
        var members: [String] = []
        if let tier { members.append("\"tier\":\(tier)") }
        if let department { members.append("\"department\":\(quoted(department))") }
        if let personal { members.append("\"personal_context\":\(personal)") }
        if let intent { members.append("\"user_intent\":\(quoted(intent))") }
        return "{" + members.joined(separator: ",") + "}"
    }
}

/// What set a decision off.
public struct DeliveryTrigger: Sendable, Equatable {
    public enum Kind: String, Sendable { case pageView = "page_view", search, dwell, intent }
    public let kind: Kind
    public let eventID: String
    public let time: Int64
    public let subjectType: String?
    public let subjectID: String?
    public var context = UserContext()
}

/// One decision about one user: an insight delivered (now or after waiting for a breakpoint),
/// held back for the control group, or suppressed with its reason.
public struct DeliveryDecision: Sendable, Equatable {
    public enum Mode: String, Sendable { case ambient, interrupt }
    public enum Outcome: String, Sendable { case delivered, control, suppressed }

    public let workspaceID: String
    public let userID: String
    public let trigger: DeliveryTrigger
    public let insightID: String
    public let insightType: InsightType
    public let priority: InsightPriority
    public let message: String
    public let mode: Mode
    public let outcome: Outcome
    /// Why: `breakpoint`, `pause`, `at_once`, `deferral_expired` for deliveries; the rule for
    /// suppressions (`muted`, `dismissed`, `seen`, `type_daily_cap`, `spacing`, `session_cap`,
    /// `daily_cap`, `weekly_cap`, `interrupt_pending`, `insight_gone`); `holdout` for control.
    public let reason: String
    /// When the decision was taken (event time).
    public let decidedAt: Int64

    /// One id per (user, trigger): a replay decides the same.
    public var id: String {
        UUIDv5.make(
            name: "delivery|\(workspaceID)|\(userID)|\(trigger.kind.rawValue)|\(trigger.eventID)")
    }

    /// Fixed key order, as the other records.
    public func json(thresholdsVersion: Int) -> [UInt8] {
        func optional(_ text: String?) -> String { text.map(quoted) ?? "null" }
        let fields: [(String, String)] = [
            ("id", quoted(id)), ("workspace_id", quoted(workspaceID)), ("user_id", quoted(userID)),
            ("insight_id", quoted(insightID)), ("insight_type", quoted(insightType.rawValue)),
            ("priority", quoted(priority.rawValue)), ("message", quoted(message)), ("mode", quoted(mode.rawValue)),
            ("outcome", quoted(outcome.rawValue)), ("reason", quoted(reason)),
            (
                "trigger",
                "{\"kind\":\(quoted(trigger.kind.rawValue)),\"event_id\":\(quoted(trigger.eventID)),"
                    + "\"subject_type\":\(optional(trigger.subjectType)),"
                    + "\"subject_id\":\(optional(trigger.subjectID)),"
                    + "\"at\":\(quoted(Timestamp(microseconds: trigger.time).rfc3339))"
                    + (trigger.context.isEmpty ? "" : ",\"context\":\(trigger.context.json)") + "}"
            ),
            ("decided_at", quoted(Timestamp(microseconds: decidedAt).rfc3339)),
            ("thresholds_version", String(thresholdsVersion)), ("engine_version", quoted(engineVersion)),
        ]
        return JSONValue.objectBytes(fields)
    }
}

/// An insight of the workspace as of some instant, with the id of its record.
public struct CurrentInsight: Sendable, Equatable {
    public let id: String
    public let insight: Insight

    public init(id: String, insight: Insight) {
        self.id = id
        self.insight = insight
    }

    /// What "the same insight, unchanged" means: type, priority, message and evidence.
    var content: String {
        insight.type.rawValue + "|" + insight.priority.rawValue + "|" + insight.message + "|"
            + insight.evidence.keys.sorted().map { "\($0)=\(insight.evidence[$0] ?? "")" }.joined(separator: ",")
    }
}

/// A workspace's delivery decisions, taken one event at a time in the workspace's log order:
/// a pure function of its events and its insights as of each, so a replay decides the same.
///
/// Timers (a dwell, a pause that is a breakpoint, a deferral's end) fire when the workspace's
/// event time passes them, before the event that passes them, with the insights as of the
/// event before: time moves with the log, never with the clock.
public struct DeliveryEngine: Sendable {
    struct Pending: Sendable {
        let trigger: DeliveryTrigger
        let type: InsightType
        let deadline: Int64
    }

    struct User: Sendable {
        var lastActivity: Int64?
        var sessionStart: Int64 = 0
        /// Deliveries (not control, not suppressed) of the last 7 days: time, type, interrupt.
        var delivered: [(time: Int64, type: InsightType, interrupt: Bool)] = []
        var seen: [InsightType: String] = [:]
        var mutedUntil: [InsightType: Int64] = [:]
        var dismissedUntil: [InsightType: Int64] = [:]
        var dismissals: [Int64] = []
        var pending: Pending?
        /// A page view with a subject, waiting to become a dwell.
        var dwell: DeliveryTrigger?
        /// The user withdrew consent to in-context insights: nothing is decided for them.
        var withdrawn = false
    }

    public let workspaceID: String
    var users: [String: User] = [:]
    /// The users with a timer (a page that may become a dwell, a waiting interrupt): the only
    /// ones a passing event must look at, so an event's cost does not grow with the users.
    private var timed: Set<String> = []
    /// The insights of the decision being taken (asked for only when a decision needs them).
    private var insights: [CurrentInsight] = []
    /// When each insight type's content last changed, as seen by the decisions (newest first
    /// breaks ties).
    var changed: [InsightType: (content: String, since: Int64)] = [:]

    public init(workspaceID: String) { self.workspaceID = workspaceID }

    /// Users with state held (for the memory bounds).
    public var userCount: Int { users.count }

    /// Whether a timer (a dwell, a pause, a deferral's end) ends before `asOf`: then `advance`
    /// needs the insights as of the event before.
    public func hasTimer(before asOf: Int64, rules: DeliveryRules) -> Bool {
        nextTimer(upTo: asOf, rules: rules) != nil
    }

    /// Whether `observe` will ask for the insights as of this event.
    public static func needsInsights(_ event: BusinessEvent) -> Bool {
        switch event.eventType {
        case "page.viewed": return event.string("subject_type") != nil && event.string("subject_id") != nil
        case "intent.resolved", "search.performed", "workflow.completed", "workflow.abandoned": return true
        case "insight.feedback": return event.string("verdict") == "dismissed"
        default: return false
        }
    }

    /// Fires the timers that end before `asOf`, with the insights as of the event before it.
    public mutating func advance(
        to asOf: Int64, insights current: () -> [CurrentInsight], rules: DeliveryRules
    ) -> [DeliveryDecision] {
        guard hasTimer(before: asOf, rules: rules) else { return [] }
        use(current(), at: asOf)
        return fireTimers(upTo: asOf, rules: rules)
    }

    private mutating func use(_ current: [CurrentInsight], at asOf: Int64) {
        insights = current
        for item in current where changed[item.insight.type]?.content != item.content {
            changed[item.insight.type] = (item.content, asOf)
        }
    }

    /// Applies one business event at `asOf` (its as_of point; timers before it already fired
    /// by `advance`), asking for the workspace's insights as of it only when a decision needs
    /// them, and returns the decisions the event took.
    public mutating func observe(
        _ event: BusinessEvent, asOf: Int64, insights current: () -> [CurrentInsight], rules: DeliveryRules
    ) -> [DeliveryDecision] {
        var decisions = fireTimers(upTo: asOf, rules: rules)
        if Self.needsInsights(event) { use(current(), at: asOf) }
        let userID = event.actorUserID
        // An erased person's events still move the workspace's clock, never their own state.
        if UserKey.isErasedActor(userID) { return decisions }
        let previous = activity(of: userID, at: asOf, rules: rules)

        switch event.eventType {
        case "page.viewed":
            guard let type = event.string("subject_type"), let id = event.string("subject_id") else { break }
            let trigger = DeliveryTrigger(
                kind: .pageView, eventID: event.eventID, time: asOf, subjectType: type, subjectID: id.lowercased(),
                context: UserContext(event))
            users[userID]?.dwell = trigger
            decisions += decide(userID, trigger, previous: previous, now: asOf, rules: rules)
        case "search.performed":
            let trigger = DeliveryTrigger(
                kind: .search, eventID: event.eventID, time: asOf, subjectType: nil, subjectID: nil,
                context: UserContext(event))
            decisions += decide(userID, trigger, previous: previous, now: asOf, rules: rules)
        case "intent.resolved":
            // A finished intent (not a question back to the user) is a breakpoint; one that
            // names an entity is a trigger too, decided after what the breakpoint released.
            let outcome = event.string("outcome") ?? ""
            if !ContextVocabulary.clarifyOutcomes.contains(outcome) {
                decisions += breakpoint(userID, at: asOf, previous: previous, reason: "finished_intent", rules: rules)
            }
            if let type = event.string("subject_type"), let id = event.string("subject_id") {
                let trigger = DeliveryTrigger(
                    kind: .intent, eventID: event.eventID, time: asOf, subjectType: type, subjectID: id.lowercased(),
                    context: UserContext(event))
                decisions += decide(userID, trigger, previous: previous, now: asOf, rules: rules)
            }
        case "consent.granted", "consent.withdrawn":
            guard event.string("purpose") == ConsentPurpose.inContextInsights.rawValue else { break }
            let withdrawn = event.eventType == "consent.withdrawn"
            users[userID]?.withdrawn = withdrawn
            // What waited for the user goes with the consent: no record of it is made.
            if withdrawn {
                users[userID]?.pending = nil
                users[userID]?.dwell = nil
            }
        case "workflow.completed", "workflow.abandoned":
            decisions += breakpoint(userID, at: asOf, previous: previous, reason: "breakpoint", rules: rules)
        case "insight.feedback":
            guard let verdict = event.string("verdict"),
                let type = event.string("insight_type").flatMap(InsightType.init(rawValue:))
            else { break }
            if verdict == "not_useful" { users[userID]?.mutedUntil[type] = asOf + rules.mute }
            if verdict == "dismissed" {
                users[userID]?.dismissedUntil[type] = asOf + rules.dismissSuppression
                users[userID]?.dismissals.append(asOf)
                decisions += breakpoint(userID, at: asOf, previous: previous, reason: "breakpoint", rules: rules)
            }
        default:
            break
        }
        refresh(userID)
        return decisions
    }

    /// Something the user did at `asOf` (any business event or user action of theirs): the
    /// session goes on or starts, a dwell ends. Returns their activity before it.
    @discardableResult
    public mutating func activity(of userID: String, at asOf: Int64, rules: DeliveryRules) -> Int64? {
        var user = users[userID] ?? User()
        let previous = user.lastActivity
        if previous.map({ asOf - $0 >= rules.sessionGap }) ?? true { user.sessionStart = asOf }
        user.lastActivity = asOf
        user.dwell = nil
        prune(&user, now: asOf)
        users[userID] = user
        refresh(userID)
        return previous
    }

    /// The next timer: a user's dwell, pause or deferral end, earliest first (ties by user).
    private func nextTimer(upTo limit: Int64, rules: DeliveryRules) -> (time: Int64, user: String, kind: Int)? {
        var best: (time: Int64, user: String, kind: Int)?
        for id in timed {
            guard let user = users[id] else { continue }
            var candidates: [(Int64, Int)] = []
            if let dwell = user.dwell { candidates.append((dwell.time + rules.dwell, 0)) }
            if let pending = user.pending {
                // A pause after the trigger: the trigger itself may be the user's last event.
                if let last = user.lastActivity {
                    candidates.append((max(last + rules.pause, pending.trigger.time), 1))
                }
                candidates.append((pending.deadline, 2))
            }
            for (time, kind) in candidates where time < limit {
                if best.map({ (time, id, kind) < ($0.time, $0.user, $0.kind) }) ?? true { best = (time, id, kind) }
            }
        }
        return best
    }

    /// Keeps `timed` in step with a user's timers after their state changed.
    private mutating func refresh(_ userID: String) {
        if users[userID]?.dwell != nil || users[userID]?.pending != nil {
            timed.insert(userID)
        } else {
            timed.remove(userID)
        }
    }

    private mutating func fireTimers(upTo limit: Int64, rules: DeliveryRules) -> [DeliveryDecision] {
        var decisions: [DeliveryDecision] = []
        while let timer = nextTimer(upTo: limit, rules: rules) {
            defer { refresh(timer.user) }
            guard var user = users[timer.user] else { break }
            switch timer.kind {
            case 0:
                guard let page = user.dwell else { break }
                user.dwell = nil
                users[timer.user] = user
                let trigger = DeliveryTrigger(
                    kind: .dwell, eventID: page.eventID, time: timer.time, subjectType: page.subjectType,
                    subjectID: page.subjectID, context: page.context)
                // A dwell is a pause too: the user has been still since the page view.
                decisions += breakpoint(timer.user, at: timer.time, previous: nil, reason: "pause", rules: rules)
                decisions += decide(timer.user, trigger, previous: page.time, now: timer.time, rules: rules)
            case 1:
                decisions += breakpoint(timer.user, at: timer.time, previous: nil, reason: "pause", rules: rules)
            default:
                guard let pending = user.pending else { break }
                user.pending = nil
                users[timer.user] = user
                decisions += deliverPending(
                    timer.user, pending, at: timer.time, mode: .ambient, reason: "deferral_expired",
                    rules: rules)
            }
        }
        return decisions
    }

    /// A breakpoint of the user's: a pending interrupt goes now, unless the user is busy (their
    /// event before this one is more recent than `busy`).
    private mutating func breakpoint(
        _ userID: String, at time: Int64, previous: Int64?, reason: String, rules: DeliveryRules
    ) -> [DeliveryDecision] {
        guard let pending = users[userID]?.pending else { return [] }
        if let previous, time - previous < rules.busy { return [] }
        users[userID]?.pending = nil
        return deliverPending(userID, pending, at: time, mode: .interrupt, reason: reason, rules: rules)
    }

    private mutating func deliverPending(
        _ userID: String, _ pending: Pending, at time: Int64, mode: DeliveryDecision.Mode, reason: String,
        rules: DeliveryRules
    ) -> [DeliveryDecision] {
        guard let current = insights.first(where: { $0.insight.type == pending.type }), let user = users[userID] else {
            return [
                decision(
                    userID, pending.trigger, nil, type: pending.type, mode: mode, .suppressed, "insight_gone", at: time)
            ]
        }
        if let blocked = blocked(user, current, at: time) ?? capped(userID, at: time, rules: rules) {
            return [decision(userID, pending.trigger, current, mode: mode, .suppressed, blocked, at: time)]
        }
        return [record(userID, pending.trigger, current, mode: mode, reason: reason, at: time)]
    }

    /// Which insight a trigger shows, and how.
    private mutating func decide(
        _ userID: String, _ trigger: DeliveryTrigger, previous: Int64?, now: Int64, rules: DeliveryRules
    ) -> [DeliveryDecision] {
        guard let user = users[userID], !user.withdrawn else { return [] }
        let ranked = rank(trigger)
        guard let top = ranked.first else { return [] }
        var chosen: CurrentInsight?
        var firstBlock: String?
        for candidate in ranked {
            if let block = blocked(user, candidate, at: now) {
                if firstBlock == nil { firstBlock = block }
                continue
            }
            chosen = candidate
            break
        }
        guard let chosen else {
            return [decision(userID, trigger, top, mode: .ambient, .suppressed, firstBlock ?? "seen", at: now)]
        }
        if Self.heldOut(workspaceID, userID, percent: rules.holdoutPercent) {
            return [decision(userID, trigger, chosen, mode: .ambient, .control, "holdout", at: now)]
        }
        if let blocked = capped(userID, at: now, rules: rules) {
            return [decision(userID, trigger, chosen, mode: .ambient, .suppressed, blocked, at: now)]
        }
        let lastInterrupt = user.delivered.last(where: \.interrupt)?.time
        // A user in a personal context is never interrupted.
        let interrupt =
            chosen.insight.priority == .high && trigger.context.personal != true
            && lastInterrupt.map { now - $0 >= rules.interruptSpacing } ?? true
        guard interrupt else { return [record(userID, trigger, chosen, mode: .ambient, reason: "at_once", at: now)] }
        // An interrupt goes at once only to a user back from a pause; otherwise it waits for
        // a breakpoint, at most maxDeferral.
        if let previous, now - previous < rules.pause {
            if user.pending != nil {
                return [decision(userID, trigger, chosen, mode: .interrupt, .suppressed, "interrupt_pending", at: now)]
            }
            users[userID]?.pending = Pending(
                trigger: trigger, type: chosen.insight.type, deadline: now + rules.maxDeferral)
            return []
        }
        return [record(userID, trigger, chosen, mode: .interrupt, reason: "pause", at: now)]
    }

    /// The current insights a trigger may show, best first: about the trigger's subject, then
    /// of its context, then by priority, then the most recently changed, then by type. Only
    /// those about the subject, of the context, or of high priority are relevant.
    func rank(_ trigger: DeliveryTrigger) -> [CurrentInsight] {
        let context: [InsightType]
        switch (trigger.kind, trigger.subjectType) {
        case (.pageView, "pipeline"?), (.pageView, "deal"?), (.intent, "pipeline"?), (.intent, "deal"?):
            context = [.dealStalled, .salesCycleVariance, .engagementDrop]
        case (.pageView, "customer"?), (.pageView, "contact"?), (.intent, "customer"?), (.intent, "contact"?):
            context = [.repeatCustomer, .engagementDrop]
        default:
            context = [.nextBestAction]
        }
        func aboutSubject(_ insight: Insight) -> Bool {
            guard let subject = trigger.subjectID else { return false }
            let quotedSubject = "\"\(subject)\""
            return (insight.evidence["deal_ids"]?.contains(quotedSubject) ?? false)
                || insight.evidence["top_customer_id"] == quotedSubject
        }
        func priority(_ p: InsightPriority) -> Int { p == .high ? 2 : p == .medium ? 1 : 0 }
        // What the user says they are doing comes before what the page suggests.
        let preferred = trigger.context.preferred
        let relevant = insights.filter {
            aboutSubject($0.insight) || preferred.contains($0.insight.type) || context.contains($0.insight.type)
                || $0.insight.priority == .high
        }
        func key(_ item: CurrentInsight) -> (Int, Int, Int) {
            (
                aboutSubject(item.insight) ? 1 : 0, preferred.contains(item.insight.type) ? 1 : 0,
                context.contains(item.insight.type) ? 1 : 0
            )
        }
        return relevant.sorted { a, b in
            let keyA = key(a)
            let keyB = key(b)
            if keyA != keyB { return keyA > keyB }
            if a.insight.priority != b.insight.priority {
                return priority(a.insight.priority) > priority(b.insight.priority)
            }
            let sinceA = changed[a.insight.type]?.since ?? 0
            let sinceB = changed[b.insight.type]?.since ?? 0
            if sinceA != sinceB { return sinceA > sinceB }
            return a.insight.type.rawValue < b.insight.type.rawValue
        }
    }

    /// Why this user may not see this insight now, if they may not.
    private func blocked(_ user: User, _ candidate: CurrentInsight, at now: Int64) -> String? {
        let type = candidate.insight.type
        if user.pending?.type == type { return "interrupt_pending" }
        if let until = user.mutedUntil[type], now < until { return "muted" }
        if let until = user.dismissedUntil[type], now < until { return "dismissed" }
        if user.seen[type] == candidate.content { return "seen" }
        if user.delivered.contains(where: { $0.type == type && now - $0.time < DeliveryRules.day }) {
            return "type_daily_cap"
        }
        return nil
    }

    /// The user's spacing and caps (halved after repeated dismissals), if one is reached.
    private func capped(_ userID: String, at now: Int64, rules: DeliveryRules) -> String? {
        guard let user = users[userID] else { return nil }
        let fatigued = rules.fatigueDismissals > 0 && user.dismissals.count >= rules.fatigueDismissals
        func cap(_ n: Int) -> Int { fatigued ? n / 2 : n }
        if let last = user.delivered.last?.time, now - last < rules.minSpacing { return "spacing" }
        if user.delivered.filter({ $0.time >= user.sessionStart }).count >= cap(rules.perSession) {
            return "session_cap"
        }
        if user.delivered.filter({ now - $0.time < DeliveryRules.day }).count >= cap(rules.perDay) {
            return "daily_cap"
        }
        if user.delivered.count >= cap(rules.perWeek) { return "weekly_cap" }
        return nil
    }

    private mutating func record(
        _ userID: String, _ trigger: DeliveryTrigger, _ insight: CurrentInsight, mode: DeliveryDecision.Mode,
        reason: String, at now: Int64
    ) -> DeliveryDecision {
        users[userID]?.delivered.append((now, insight.insight.type, mode == .interrupt))
        users[userID]?.seen[insight.insight.type] = insight.content
        return decision(userID, trigger, insight, mode: mode, .delivered, reason, at: now)
    }

    private func decision(
        _ userID: String, _ trigger: DeliveryTrigger, _ insight: CurrentInsight?, type: InsightType? = nil,
        mode: DeliveryDecision.Mode, _ outcome: DeliveryDecision.Outcome, _ reason: String, at now: Int64
    ) -> DeliveryDecision {
        DeliveryDecision(
            workspaceID: workspaceID, userID: userID, trigger: trigger, insightID: insight?.id ?? "",
            insightType: insight?.insight.type ?? type ?? .nextBestAction, priority: insight?.insight.priority ?? .low,
            message: insight?.insight.message ?? "", mode: mode, outcome: outcome, reason: reason, decidedAt: now)
    }

    /// Forgets what no rule can see any more: deliveries and dismissals older than 7 days,
    /// mutes and suppressions that ended.
    private func prune(_ user: inout User, now: Int64) {
        let week = 7 * DeliveryRules.day
        if let first = user.delivered.first, now - first.time >= week {
            user.delivered.removeAll { now - $0.time >= week }
        }
        if let first = user.dismissals.first, now - first >= week { user.dismissals.removeAll { now - $0 >= week } }
        // Every event of the user passes here: rebuild the maps only when one has ended.
        if user.mutedUntil.values.contains(where: { $0 <= now }) {
            user.mutedUntil = user.mutedUntil.filter { $0.value > now }
        }
        if user.dismissedUntil.values.contains(where: { $0 <= now }) {
            user.dismissedUntil = user.dismissedUntil.filter { $0.value > now }
        }
    }

    /// A stable share of users, by a hash of (workspace, user): the same users in every replay.
    static func heldOut(_ workspaceID: String, _ userID: String, percent: Double) -> Bool {
        guard percent > 0 else { return false }
        let id = UUIDv5.make(name: "holdout|\(workspaceID)|\(userID)")
        let bucket = Int(id.prefix(4), radix: 16).map { $0 % 10_000 } ?? 0
        return Double(bucket) < percent * 100
    }
}

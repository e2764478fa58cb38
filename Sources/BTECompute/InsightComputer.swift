import BTEDomain

/// The five core insight types of seed 003.
public enum InsightType: String, CaseIterable, Sendable {
    case salesCycleVariance = "sales_cycle_variance"
    case repeatCustomer = "repeat_customer"
    case dealStalled = "deal_stalled"
    case engagementDrop = "engagement_drop"
    case nextBestAction = "next_best_action"
}

public enum InsightPriority: String, Sendable {
    case low, medium, high
}

/// One insight: evidence as ordered key/value pairs (JSON literals), a priority and a sentence.
public struct Insight: Sendable, Equatable {
    public let type: InsightType
    public let priority: InsightPriority
    public let message: String
    public let evidence: [String: String]

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.type == rhs.type && lhs.priority == rhs.priority && lhs.message == rhs.message
            && lhs.evidence == rhs.evidence
    }
}

/// Insights of a workspace as of an instant. Rules and their constants are documented in
/// docs/signals.md#insights; the same history and as_of always give the same insights.
public struct InsightComputer: Sendable {
    static let day = Timestamp.microsecondsPerDay
    /// Evidence lists carry their full count and at most this many ids (the smallest), so a
    /// workspace with thousands of them still publishes a small record.
    public static let maxEvidenceIDs = 20

    public init() {}

    public func compute(_ history: WorkspaceHistory, asOf: Timestamp) -> [Insight] {
        let events = history.events.filter { $0.timestamp <= asOf }.sorted {
            ($0.timestamp, $0.eventID) < ($1.timestamp, $1.eventID)
        }
        let now = asOf.microseconds
        func within(_ event: BusinessEvent, _ fromDays: Int64, _ toDays: Int64) -> Bool {
            // (as_of − fromDays, as_of − toDays]
            event.timestamp.microseconds > now - fromDays * Self.day
                && event.timestamp.microseconds <= now - toDays * Self.day
        }
        var insights: [Insight] = []

        // sales_cycle_variance: mean days from deal.created to deal.won, deals won in the last 90
        // days against those won in the 90 before; reported from a 10 % change.
        var created: [String: Timestamp] = [:]
        for event in events where event.eventType == "deal.created" && created[event.entityID] == nil {
            created[event.entityID] = event.timestamp
        }
        func cycles(_ from: Int64, _ to: Int64) -> [Double] {
            events.filter { $0.eventType == "deal.won" && within($0, from, to) }.compactMap { won in
                created[won.entityID].map { Double(won.timestamp.microseconds - $0.microseconds) / Double(Self.day) }
            }
        }
        let recent = cycles(90, 0), earlier = cycles(180, 90)
        if !recent.isEmpty, !earlier.isEmpty {
            let now = recent.reduce(0, +) / Double(recent.count), before = earlier.reduce(0, +) / Double(earlier.count)
            if before > 0 {
                let change = (now - before) / before
                if abs(change) >= 0.10 {
                    let percent = Int((abs(change) * 100).rounded())
                    insights.append(
                        Insight(
                            type: .salesCycleVariance, priority: abs(change) >= 0.25 ? .high : .medium,
                            message:
                                "Your sales cycle is \(change > 0 ? "increasing" : "decreasing") by \(percent)% "
                                + "this quarter (\(days(now)) days vs \(days(before))).",
                            evidence: [
                                "change": formatNumber(change), "mean_cycle_days": formatNumber(now),
                                "previous_mean_cycle_days": formatNumber(before),
                                "deals_won": String(recent.count), "previous_deals_won": String(earlier.count),
                            ]))
                }
            }
        }

        // repeat_customer: customers with two or more orders in the last 90 days.
        var orders: [String: Int] = [:]
        for event in events where event.eventType == "order.created" && within(event, 90, 0) {
            if let customer = event.string("customer_id") { orders[customer, default: 0] += 1 }
        }
        let repeaters = orders.filter { $0.value >= 2 }.sorted {
            $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key
        }
        if let top = repeaters.first {
            insights.append(
                Insight(
                    type: .repeatCustomer, priority: repeaters.count >= 3 ? .high : .medium,
                    message: repeaters.count == 1
                        ? "Customer \(top.key) is a repeat buyer: \(top.value) orders in the last 90 days."
                        : "\(repeaters.count) customers are repeat buyers; "
                            + "\(top.key) ordered \(top.value) times in the last 90 days.",
                    evidence: [
                        "repeat_customers": String(repeaters.count), "top_customer_id": quoted(top.key),
                        "top_customer_orders": String(top.value),
                    ]))
        }

        // deal_stalled: open deals (not won or lost) whose last deal event is 14 days old or more.
        var lastTouch: [String: Timestamp] = [:]
        var closed: Set<String> = []
        for event in events where event.eventType.hasPrefix("deal.") {
            lastTouch[event.entityID] = event.timestamp
            if event.eventType == "deal.won" || event.eventType == "deal.lost" { closed.insert(event.entityID) }
        }
        let stalled = lastTouch.filter { !closed.contains($0.key) && now - $0.value.microseconds >= 14 * Self.day }.keys
            .sorted()
        if !stalled.isEmpty {
            insights.append(
                Insight(
                    type: .dealStalled, priority: stalled.count >= 3 ? .high : .medium,
                    message:
                        "\(stalled.count) deal"
                        + "\(stalled.count == 1 ? " in your pipeline has" : "s in your pipeline have")"
                        + " stalled for 2+ weeks.",
                    evidence: [
                        "stalled_deals": String(stalled.count),
                        "deal_ids": "[" + stalled.prefix(Self.maxEvidenceIDs).map(quoted).joined(separator: ",") + "]",
                    ]))
        }

        // engagement_drop: contact engagements in the last 14 days against the 14 before; from 30 % down.
        let thisPeriod = events.filter { $0.eventType == "contact.engaged" && within($0, 14, 0) }.count
        let lastPeriod = events.filter { $0.eventType == "contact.engaged" && within($0, 28, 14) }.count
        if lastPeriod > 0 {
            let drop = Double(lastPeriod - thisPeriod) / Double(lastPeriod)
            if drop >= 0.30 {
                insights.append(
                    Insight(
                        type: .engagementDrop, priority: drop >= 0.5 ? .high : .medium,
                        message:
                            "Customer engagement dropped \(Int((drop * 100).rounded()))% in the last two weeks "
                            + "(\(thisPeriod) engagements vs \(lastPeriod)).",
                        evidence: [
                            "drop": formatNumber(drop), "engagements": String(thisPeriod),
                            "previous_engagements": String(lastPeriod),
                        ]))
            }
        }

        // next_best_action: the action type most often acted on with success, in the last 30 days,
        // by other workspaces of this workspace's sub-verticals, that this workspace hasn't been
        // given or acted on in that time. Ties: the smallest action type.
        let subVerticals = Set(events.map(\.subVerticalID)).union(history.subVerticalIDs)
        var peerCounts: [String: Int] = [:]
        let monthAgo = Timestamp(microseconds: now - 30 * Self.day)
        for subVertical in subVerticals.sorted() {
            for actionType in history.peers.actionTypes(in: subVertical) {
                let count = history.peers.count(
                    subVertical: subVertical, actionType: actionType, excluding: history.workspaceID, after: monthAgo,
                    upTo: asOf)
                if count > 0 { peerCounts[actionType, default: 0] += count }
            }
        }
        let ownTypes = Set(
            events.filter { $0.eventType == "recommendation.given" && within($0, 30, 0) }.compactMap {
                $0.string("action_type")
            })
        let candidates = peerCounts.filter { !ownTypes.contains($0.key) }.sorted {
            $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key
        }
        if let best = candidates.first {
            insights.append(
                Insight(
                    type: .nextBestAction, priority: best.value >= 5 ? .high : .low,
                    message:
                        "Based on similar customers, suggest \(best.key.replacingUnderscores()): "
                        + "it succeeded \(best.value) time\(best.value == 1 ? "" : "s") "
                        + "in your sub-vertical this month.",
                    evidence: ["action_type": quoted(best.key), "peer_successes": String(best.value)]))
        }
        return insights
    }
}

private func days(_ value: Double) -> String {
    let tenths = (value * 10).rounded() / 10
    return tenths == tenths.rounded() ? String(Int64(tenths)) : String(tenths)
}

extension String {
    func replacingUnderscores() -> String { String(map { $0 == "_" ? " " : $0 }) }
}

/// An insight as published on `bte.insights.v1`, with the output envelope.
public struct InsightRecord: Sendable {
    public let workspaceID: String
    public let insight: Insight
    public let asOf: Timestamp
    public let thresholdsVersion: Int
    public let computedFrom: Int

    public init(workspaceID: String, insight: Insight, asOf: Timestamp, thresholdsVersion: Int, computedFrom: Int) {
        self.workspaceID = workspaceID
        self.insight = insight
        self.asOf = asOf
        self.thresholdsVersion = thresholdsVersion
        self.computedFrom = computedFrom
    }

    public var id: String {
        UUIDv5.make(
            name: "insight|workspace|\(workspaceID)|\(insight.type.rawValue)|\(asOf.rfc3339)|\(thresholdsVersion)")
    }

    /// Fixed key order; evidence keys sorted.
    public func json() -> [UInt8] {
        let evidence =
            "{"
            + insight.evidence.keys.sorted().map { "\(quoted($0)):\(insight.evidence[$0] ?? "null")" }.joined(
                separator: ",") + "}"
        let fields: [(String, String)] = [
            ("id", quoted(id)), ("workspace_id", quoted(workspaceID)), ("insight_type", quoted(insight.type.rawValue)),
            ("priority", quoted(insight.priority.rawValue)), ("message", quoted(insight.message)),
            ("evidence", evidence),
            ("as_of", quoted(asOf.rfc3339)), ("thresholds_version", String(thresholdsVersion)),
            ("computed_from", String(computedFrom)), ("engine_version", quoted(engineVersion)),
        ]
        return Array(("{" + fields.map { "\(quoted($0.0)):\($0.1)" }.joined(separator: ",") + "}").utf8)
    }
}

extension InsightComputer {
    /// The events the rules read, each kind within its own look-back from this workspace's
    /// as_of: every deal event (an open deal can be old), orders of 90 days, contact
    /// engagements of 28, givens of 30. A function of the workspace and as_of only.
    static func inputCount(_ history: WorkspaceHistory, asOf: Timestamp) -> Int {
        let now = asOf.microseconds
        return history.events.reduce(0) { count, event in
            let t = event.timestamp.microseconds
            guard t <= now else { return count }
            let lookBack: Int64?
            switch event.eventType {
            case let type where type.hasPrefix("deal."): lookBack = nil
            case "order.created": lookBack = 90
            case "contact.engaged": lookBack = 28
            case "recommendation.given": lookBack = 30
            default: return count
            }
            if let days = lookBack, t <= now - days * Self.day { return count }
            return count + 1
        }
    }

    public func records(_ history: WorkspaceHistory, asOf: Timestamp, thresholdsVersion: Int) -> [InsightRecord] {
        let used = InsightComputer.inputCount(history, asOf: asOf)
        return compute(history, asOf: asOf).map {
            InsightRecord(
                workspaceID: history.workspaceID, insight: $0, asOf: asOf, thresholdsVersion: thresholdsVersion,
                computedFrom: used)
        }
    }
}

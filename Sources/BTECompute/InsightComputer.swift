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
        aggregates(history, asOf: asOf).insights()
    }

    /// What the insight rules are finished from, counted from scratch: the recomputation that
    /// the incremental state must equal.
    public func aggregates(_ history: WorkspaceHistory, asOf: Timestamp) -> InsightAggregates {
        let events = history.events.filter { $0.timestamp <= asOf }.sorted {
            ($0.timestamp, $0.eventID) < ($1.timestamp, $1.eventID)
        }
        let now = asOf.microseconds
        func within(_ event: BusinessEvent, _ fromDays: Int64, _ toDays: Int64) -> Bool {
            // (as_of − fromDays, as_of − toDays]
            event.timestamp.microseconds > now - fromDays * Self.day
                && event.timestamp.microseconds <= now - toDays * Self.day
        }
        var result = InsightAggregates()
        result.used = InsightComputer.inputCount(history, asOf: asOf)

        // sales_cycle_variance: days from deal.created to deal.won, of deals won in the last 90
        // days and in the 90 before.
        var created: [String: Timestamp] = [:]
        for event in events where event.eventType == "deal.created" && created[event.entityID] == nil {
            created[event.entityID] = event.timestamp
        }
        for won in events where won.eventType == "deal.won" {
            guard let start = created[won.entityID] else { continue }
            let cycle = SumPartial(won.timestamp.microseconds - start.microseconds)
            if within(won, 90, 0) { result.recentCycles.add(cycle) }
            if within(won, 180, 90) { result.earlierCycles.add(cycle) }
        }

        // repeat_customer: orders per customer in the last 90 days.
        var orders: [String: Int] = [:]
        for event in events where event.eventType == "order.created" && within(event, 90, 0) {
            if let customer = event.string("customer_id") { orders[customer, default: 0] += 1 }
        }
        result.setRepeaters(orders)

        // deal_stalled: open deals (not won or lost) whose last deal event is 14 days old or more.
        var lastTouch: [String: Timestamp] = [:]
        var closed: Set<String> = []
        for event in events where event.eventType.hasPrefix("deal.") {
            lastTouch[event.entityID] = event.timestamp
            if event.eventType == "deal.won" || event.eventType == "deal.lost" { closed.insert(event.entityID) }
        }
        let stalled = lastTouch.filter { !closed.contains($0.key) && now - $0.value.microseconds >= 14 * Self.day }.keys
            .sorted()
        result.stalledDeals = stalled.count
        result.stalledFirst = Array(stalled.prefix(Self.maxEvidenceIDs))

        // engagement_drop: contact engagements in the last 14 days against the 14 before.
        result.engagements = events.filter { $0.eventType == "contact.engaged" && within($0, 14, 0) }.count
        result.previousEngagements = events.filter { $0.eventType == "contact.engaged" && within($0, 28, 14) }.count

        // next_best_action: successes of other workspaces of this workspace's sub-verticals in
        // the last 30 days, per action type, less the types this workspace was given then.
        let subVerticals = Set(events.map(\.subVerticalID)).union(history.subVerticalIDs)
        let ownTypes = Set(
            events.filter { $0.eventType == "recommendation.given" && within($0, 30, 0) }.compactMap {
                $0.string("action_type")
            })
        result.setBest(
            InsightAggregates.peerCounts(
                history.peers, subVerticals: subVerticals, excluding: history.workspaceID, asOf: asOf),
            ownTypes: ownTypes)
        return result
    }
}

/// Everything the insight rules are finished from, as of one instant; equal aggregates give
/// byte-identical insights.
public struct InsightAggregates: Sendable, Equatable {
    public var used = 0
    public var recentCycles = SumPartial()
    public var earlierCycles = SumPartial()
    public var repeatCustomers = 0
    public var topCustomer: String?
    public var topCustomerOrders = 0
    public var stalledDeals = 0
    /// The smallest stalled deal ids, at most ``InsightComputer/maxEvidenceIDs``.
    public var stalledFirst: [String] = []
    public var engagements = 0
    public var previousEngagements = 0
    public var nextBestAction: String?
    public var nextBestActionSuccesses = 0

    public init() {}

    /// Repeat customers (two orders or more) and the top one: most orders, then smallest id.
    public mutating func setRepeaters(_ orders: [String: Int]) {
        var count = 0
        var top: (String, Int)?
        for (customer, orders) in orders where orders >= 2 {
            count += 1
            if let current = top, current.1 > orders || (current.1 == orders && current.0 < customer) { continue }
            top = (customer, orders)
        }
        repeatCustomers = count
        topCustomer = top?.0
        topCustomerOrders = top?.1 ?? 0
    }

    /// The action type other workspaces of these sub-verticals succeeded with most often in the
    /// 30 days to as_of, among those not in `ownTypes`; ties: the smallest type.
    public mutating func setBest(_ peerCounts: [String: Int], ownTypes: Set<String>) {
        var best: (String, Int)?
        for (type, count) in peerCounts where !ownTypes.contains(type) {
            if let current = best, current.1 > count || (current.1 == count && current.0 < type) { continue }
            best = (type, count)
        }
        nextBestAction = best?.0
        nextBestActionSuccesses = best?.1 ?? 0
    }

    /// Successes per action type in the 30 days to as_of by other workspaces of these sub-verticals.
    public static func peerCounts(
        _ peers: PeerIndex, subVerticals: Set<String>, excluding workspace: String, asOf: Timestamp
    ) -> [String: Int] {
        var counts: [String: Int] = [:]
        let monthAgo = Timestamp(microseconds: asOf.microseconds - 30 * InsightComputer.day)
        for subVertical in subVerticals {
            for actionType in peers.actionTypes(in: subVertical) {
                let count = peers.count(
                    subVertical: subVertical, actionType: actionType, excluding: workspace, after: monthAgo,
                    upTo: asOf)
                if count > 0 { counts[actionType, default: 0] += count }
            }
        }
        return counts
    }

    public func insights() -> [Insight] {
        var insights: [Insight] = []
        let day = Double(InsightComputer.day)
        if recentCycles.count > 0, earlierCycles.count > 0 {
            let now = Double(recentCycles.sum) / Double(recentCycles.count) / day
            let before = Double(earlierCycles.sum) / Double(earlierCycles.count) / day
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
                                "deals_won": String(recentCycles.count),
                                "previous_deals_won": String(earlierCycles.count),
                            ]))
                }
            }
        }
        if let top = topCustomer {
            insights.append(
                Insight(
                    type: .repeatCustomer, priority: repeatCustomers >= 3 ? .high : .medium,
                    message: repeatCustomers == 1
                        ? "Customer \(top) is a repeat buyer: \(topCustomerOrders) orders in the last 90 days."
                        : "\(repeatCustomers) customers are repeat buyers; "
                            + "\(top) ordered \(topCustomerOrders) times in the last 90 days.",
                    evidence: [
                        "repeat_customers": String(repeatCustomers), "top_customer_id": quoted(top),
                        "top_customer_orders": String(topCustomerOrders),
                    ]))
        }
        if stalledDeals > 0 {
            insights.append(
                Insight(
                    type: .dealStalled, priority: stalledDeals >= 3 ? .high : .medium,
                    message:
                        "\(stalledDeals) deal"
                        + "\(stalledDeals == 1 ? " in your pipeline has" : "s in your pipeline have")"
                        + " stalled for 2+ weeks.",
                    evidence: [
                        "stalled_deals": String(stalledDeals),
                        "deal_ids": "[" + stalledFirst.map(quoted).joined(separator: ",") + "]",
                    ]))
        }
        if previousEngagements > 0 {
            let drop = Double(previousEngagements - engagements) / Double(previousEngagements)
            if drop >= 0.30 {
                insights.append(
                    Insight(
                        type: .engagementDrop, priority: drop >= 0.5 ? .high : .medium,
                        message:
                            "Customer engagement dropped \(Int((drop * 100).rounded()))% in the last two weeks "
                            + "(\(engagements) engagements vs \(previousEngagements)).",
                        evidence: [
                            "drop": formatNumber(drop), "engagements": String(engagements),
                            "previous_engagements": String(previousEngagements),
                        ]))
            }
        }
        if let best = nextBestAction {
            let count = nextBestActionSuccesses
            insights.append(
                Insight(
                    type: .nextBestAction, priority: count >= 5 ? .high : .low,
                    message:
                        "Based on similar customers, suggest \(best.replacingUnderscores()): "
                        + "it succeeded \(count) time\(count == 1 ? "" : "s") "
                        + "in your sub-vertical this month.",
                    evidence: ["action_type": quoted(best), "peer_successes": String(count)]))
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
        return JSONValue.objectBytes(fields)
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

import BTEDomain

/// A workspace's signal and insight inputs kept as exact partial aggregates, updated one event
/// at a time, in log order. Every event moves as_of forward: to the event's time, or, for an
/// event no newer than the last as_of (late, or at the same time), one microsecond past it, so
/// each as_of names one set of inputs and an output id never stands for two contents. A late
/// event is added where it belongs, and entities whose derived values it changes (a
/// recommendation's pairs, a deal, a workflow) are recomputed and their partials swapped. The
/// result at every as_of equals ``SignalComputer/aggregates(_:asOf:)`` and
/// ``InsightComputer/aggregates(_:asOf:)`` over the same events; the cost of an event is the
/// size of the entity it touches, never the workspace's history.
public struct WorkspaceState: Sendable {
    public let workspaceID: String
    public private(set) var asOf: Int64?
    /// Events and actions applied (for `computed_from` and memory figures).
    public private(set) var applied = 0
    static let day = Timestamp.microsecondsPerDay

    // Signals.
    private var recommendations: [String: Recommendation] = [:]
    /// Each actor's acts, (time, recommendation), sorted: a late page view finds the acts after it.
    private var actsByActor: [String: [(time: Int64, entity: String)]] = [:]
    private var viewsByActor: [String: SortedTimes] = [:]
    private var acts = SlidingSum<ActPartial>(from: 30 * day)
    private var givens = SlidingSum<GivenPartial>(from: 30 * day)
    private var unacted: [PeerKey: SortedTimes] = [:]
    private var workflows: [String: Workflow] = [:]
    private var starts = SlidingSum<WorkflowPartial>(from: 30 * day)
    private var stages = SlidingSum<CountsPartial>(from: 30 * day)
    private var eventsInWindow = SlidingSum<CountPartial>(from: 30 * day)
    private var actionsInWindow = SlidingSum<CountPartial>(from: 30 * day)
    private var actionsThisWeek = SlidingSum<CountPartial>(from: 7 * day)
    private var actionsLastWeek = SlidingSum<CountPartial>(from: 14 * day, to: 7 * day)
    private var newestAction: Int64?

    // Insights.
    private var deals: [String: Deal] = [:]
    private var dealEvents = 0
    private var recentCycles = SlidingSum<SumPartial>(from: 90 * day)
    private var earlierCycles = SlidingSum<SumPartial>(from: 180 * day, to: 90 * day)
    private var stalled = SlidingSum<CountsPartial>(from: nil, to: 14 * day)
    private var orders = SlidingSum<CountsPartial>(from: 90 * day)
    private var orderCount = SlidingSum<CountPartial>(from: 90 * day)
    private var engagements = SlidingSum<CountPartial>(from: 14 * day)
    private var previousEngagements = SlidingSum<CountPartial>(from: 28 * day, to: 14 * day)
    private var engagementCount = SlidingSum<CountPartial>(from: 28 * day)
    private var givenTypes = SlidingSum<CountsPartial>(from: 30 * day)
    private var givenCount = SlidingSum<CountPartial>(from: 30 * day)
    public private(set) var subVerticals: Set<String> = []

    public init(workspaceID: String) {
        self.workspaceID = workspaceID
    }

    struct PeerKey: Hashable, Sendable {
        let subVertical: String
        let actionType: String
    }

    /// Sorted by (timestamp, event id), the order the computations pair events in.
    struct Keyed: Sendable {
        let time: Int64
        let id: String
        let event: BusinessEvent
        static func < (a: Keyed, b: Keyed) -> Bool { (a.time, a.id) < (b.time, b.id) }
    }

    struct Contribution: Sendable {
        let givenTime: Int64
        let given: GivenPartial
        let key: PeerKey?
        let acted: Bool
        let act: (time: Int64, partial: ActPartial)?
    }

    struct Recommendation: Sendable {
        var givens: [Keyed] = []
        var acts: [Keyed] = []
        var contributions: [Contribution] = []
    }

    struct Workflow: Sendable {
        var starts: [Int64] = []
        var completed = false
    }

    struct Deal: Sendable {
        var events: [Keyed] = []
        var cycles: [(time: Int64, micros: Int64)] = []
        var stalledAt: Int64?
    }

    /// The as_of after an event at `time`: its time, or just past the previous as_of.
    public static func nextAsOf(after previous: Int64?, eventTime time: Int64) -> Int64 {
        guard let previous else { return time }
        return time > previous ? time : previous + 1
    }

    private mutating func advance(_ eventTime: Int64) {
        let time = WorkspaceState.nextAsOf(after: asOf, eventTime: eventTime)
        asOf = time
        acts.advance(to: time)
        givens.advance(to: time)
        starts.advance(to: time)
        stages.advance(to: time)
        eventsInWindow.advance(to: time)
        actionsInWindow.advance(to: time)
        actionsThisWeek.advance(to: time)
        actionsLastWeek.advance(to: time)
        recentCycles.advance(to: time)
        earlierCycles.advance(to: time)
        stalled.advance(to: time)
        orders.advance(to: time)
        orderCount.advance(to: time)
        engagements.advance(to: time)
        previousEngagements.advance(to: time)
        engagementCount.advance(to: time)
        givenTypes.advance(to: time)
        givenCount.advance(to: time)
    }

    public mutating func apply(_ action: UserAction) {
        let time = action.timestamp.microseconds
        advance(time)
        applied += 1
        newestAction = max(newestAction ?? time, time)
        for window in [\WorkspaceState.actionsInWindow, \.actionsThisWeek, \.actionsLastWeek] {
            self[keyPath: window].insert(time, CountPartial(1))
        }
    }

    public mutating func apply(_ event: BusinessEvent) {
        let time = event.timestamp.microseconds
        advance(time)
        applied += 1
        subVerticals.insert(event.subVerticalID)
        eventsInWindow.insert(time, CountPartial(1))
        let keyed = Keyed(time: time, id: event.eventID, event: event)
        switch event.eventType {
        case "recommendation.given":
            recommendations[event.entityID, default: Recommendation()].givens.insertSorted(keyed)
            givenCount.insert(time, CountPartial(1))
            if let type = event.string("action_type") { givenTypes.insert(time, CountsPartial(type)) }
            repair(recommendation: event.entityID)
        case "recommendation.acted":
            recommendations[event.entityID, default: Recommendation()].acts.insertSorted(keyed)
            var byActor = actsByActor[event.actorUserID] ?? []
            let index =
                byActor.last.map { $0.time <= time } ?? true
                ? byActor.count : (byActor.firstIndex { $0.time > time } ?? byActor.count)
            byActor.insert((time, event.entityID), at: index)
            actsByActor[event.actorUserID] = byActor
            repair(recommendation: event.entityID)
        case "page.viewed":
            viewsByActor[event.actorUserID, default: SortedTimes()].insert(time)
            // A view before an act of this actor changes that act's hesitation.
            // Only acts after it (none when the view is the newest event, the usual case).
            let acts = actsByActor[event.actorUserID] ?? []
            var index = acts.count
            while index > 0, acts[index - 1].time > time { index -= 1 }
            for entity in Set(acts[index...].map(\.entity)).sorted() { repair(recommendation: entity) }
        case "workflow.started":
            workflows[event.entityID, default: Workflow()].starts.append(time)
            let done = workflows[event.entityID]?.completed == true
            starts.insert(time, WorkflowPartial(started: 1, done: done ? 1 : 0))
        case "workflow.completed":
            if workflows[event.entityID]?.completed != true {
                workflows[event.entityID, default: Workflow()].completed = true
                for start in workflows[event.entityID]?.starts ?? [] {
                    starts.insert(start, WorkflowPartial(started: 0, done: 1))
                }
            }
        case "workflow.abandoned":
            if let stage = event.string("stage") { stages.insert(time, CountsPartial(stage)) }
        case "order.created":
            orderCount.insert(time, CountPartial(1))
            if let customer = event.string("customer_id") { orders.insert(time, CountsPartial(customer)) }
        case "contact.engaged":
            for window in [\WorkspaceState.engagements, \.previousEngagements, \.engagementCount] {
                self[keyPath: window].insert(time, CountPartial(1))
            }
        case let type where type.hasPrefix("deal."):
            dealEvents += 1
            deals[event.entityID, default: Deal()].events.insertSorted(keyed)
            repair(deal: event.entityID)
        default:
            break
        }
    }

    /// Recomputes a recommendation's pairs (each given and the first act at or after it) and
    /// swaps their partials for the old ones.
    private mutating func repair(recommendation entity: String) {
        guard var recommendation = recommendations[entity] else { return }
        for old in recommendation.contributions {
            givens.remove(old.givenTime, old.given)
            if let act = old.act { acts.remove(act.time, act.partial) }
            if let key = old.key, !old.acted { unacted[key]?.remove(old.givenTime) }
        }
        var contributions: [Contribution] = []
        var next = 0
        for given in recommendation.givens {
            while next < recommendation.acts.count, recommendation.acts[next].time < given.time { next += 1 }
            let act = next < recommendation.acts.count ? recommendation.acts[next].event : nil
            let key = given.event.string("action_type").map {
                PeerKey(subVertical: given.event.subVerticalID, actionType: $0)
            }
            var actPart: (time: Int64, partial: ActPartial)?
            if let act {
                let views =
                    viewsByActor[act.actorUserID]?.count(
                        after: given.time, before: act.timestamp.microseconds) ?? 0
                actPart = (
                    act.timestamp.microseconds,
                    ActPartial(latency: act.timestamp.microseconds - given.time, views: views)
                )
            }
            contributions.append(
                Contribution(
                    givenTime: given.time,
                    given: GivenPartial(
                        expected: given.event.number("expected_value"), acted: act != nil,
                        realized: act.map { $0.number("realized_value") }),
                    key: key, acted: act != nil, act: actPart))
        }
        for new in contributions {
            givens.insert(new.givenTime, new.given)
            if let act = new.act { acts.insert(act.time, act.partial) }
            if let key = new.key, !new.acted { unacted[key, default: SortedTimes()].insert(new.givenTime) }
        }
        recommendation.contributions = contributions
        recommendations[entity] = recommendation
    }

    /// Recomputes a deal's cycles (first deal.created to each deal.won) and whether it is open,
    /// and swaps their partials for the old ones.
    private mutating func repair(deal entity: String) {
        guard var deal = deals[entity] else { return }
        for old in deal.cycles {
            recentCycles.remove(old.time, SumPartial(old.micros))
            earlierCycles.remove(old.time, SumPartial(old.micros))
        }
        if let at = deal.stalledAt { stalled.remove(at, CountsPartial(entity)) }
        let created = deal.events.first { $0.event.eventType == "deal.created" }?.time
        deal.cycles = []
        if let created {
            for won in deal.events where won.event.eventType == "deal.won" {
                deal.cycles.append((won.time, won.time - created))
            }
        }
        let closed = deal.events.contains { $0.event.eventType == "deal.won" || $0.event.eventType == "deal.lost" }
        deal.stalledAt = closed ? nil : deal.events.last?.time
        for new in deal.cycles {
            recentCycles.insert(new.time, SumPartial(new.micros))
            earlierCycles.insert(new.time, SumPartial(new.micros))
        }
        if let at = deal.stalledAt { stalled.insert(at, CountsPartial(entity)) }
        deals[entity] = deal
    }

    /// The signal aggregates as of this state's as_of; `peers` answers for other workspaces.
    public func signalAggregates(thresholds: Thresholds, peers: PeerIndex) -> SignalAggregates {
        var result = SignalAggregates()
        guard let asOf else { return result }
        result.used = eventsInWindow.sum.count + actionsInWindow.sum.count
        result.acts = acts.sum
        result.newestAction = newestAction
        result.actionsThisWeek = actionsThisWeek.sum.count
        result.actionsLastWeek = actionsLastWeek.sum.count
        result.givens = givens.sum
        result.workflows = starts.sum
        result.stages = stages.sum
        let ignoreAfter = Int64(thresholds.value("missed.ignore_after_days") * SignalComputer.day)
        let windowStart = asOf - SignalComputer.window
        for (key, times) in unacted {
            let aged = times.count(after: windowStart, upTo: min(asOf - ignoreAfter, asOf))
            guard aged > 0,
                peers.count(
                    subVertical: key.subVertical, actionType: key.actionType, excluding: workspaceID,
                    after: Timestamp(microseconds: windowStart), upTo: Timestamp(microseconds: asOf)) > 0
            else { continue }
            result.missed += aged
        }
        return result
    }

    public func insightAggregates(peers: PeerIndex) -> InsightAggregates {
        var result = InsightAggregates()
        guard let asOf else { return result }
        result.used = dealEvents + orderCount.sum.count + engagementCount.sum.count + givenCount.sum.count
        result.recentCycles = recentCycles.sum
        result.earlierCycles = earlierCycles.sum
        result.setRepeaters(orders.sum.repeats)
        result.stalledDeals = stalled.sum.sortedKeys.count
        result.stalledFirst = Array(stalled.sum.sortedKeys.prefix(InsightComputer.maxEvidenceIDs))
        result.engagements = engagements.sum.count
        result.previousEngagements = previousEngagements.sum.count
        result.setBest(
            InsightAggregates.peerCounts(
                peers, subVerticals: subVerticals, excluding: workspaceID, asOf: Timestamp(microseconds: asOf)),
            ownTypes: Set(givenTypes.sum.counts.keys))
        return result
    }

    /// Partials and events held: what the state costs in memory.
    public var size: Int {
        acts.count + givens.count + starts.count + stages.count + eventsInWindow.count + actionsInWindow.count
            + recentCycles.count + earlierCycles.count + stalled.count + orders.count + engagementCount.count
            + givenTypes.count + recommendations.values.reduce(0) { $0 + $1.givens.count + $1.acts.count }
            + deals.values.reduce(0) { $0 + $1.events.count }
    }
}

extension Array where Element == WorkspaceState.Keyed {
    mutating func insertSorted(_ element: Element) {
        if let last, !(element < last) {
            append(element)
            return
        }
        let index = firstIndex { element < $0 } ?? count
        insert(element, at: index)
    }
}

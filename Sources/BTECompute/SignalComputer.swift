import BTEDomain

/// The ten BTE signals (docs/signals.md).
public enum SignalType: String, CaseIterable, Sendable {
    case decisionLatency = "decision_latency"
    case executionConsistency = "execution_consistency"
    case idleDecay = "idle_decay"
    case momentum
    case nbaAdoptionRate = "nba_adoption_rate"
    case followThroughRate = "follow_through_rate"
    case dropOffPoint = "drop_off_point"
    case hesitationIndex = "hesitation_index"
    case missedOpportunityCount = "missed_opportunity_count"
    case executionGap = "execution_gap"
}

/// One signal's value for a workspace as of an instant.
public struct SignalValue: Sendable, Equatable {
    public let type: SignalType
    public let value: Double
    public let label: String?

    public init(_ type: SignalType, _ value: Double, label: String? = nil) {
        self.type = type
        self.value = value
        self.label = label
    }
}

/// Computes a workspace's signals as of an instant. Pure: no clock, no randomness, and the
/// result does not depend on the order of the input.
public struct SignalComputer: Sendable {
    public static let window: Int64 = 30 * Timestamp.microsecondsPerDay
    static let day = Double(Timestamp.microsecondsPerDay)

    public let thresholds: Thresholds

    public init(thresholds: Thresholds) {
        self.thresholds = thresholds
    }

    /// A given recommendation and its act: the first `recommendation.acted` on the same entity
    /// at or after it.
    struct Pair {
        let given: BusinessEvent
        let act: BusinessEvent?
    }

    /// The signals to emit. A value that came out infinite or NaN is undefined and left out;
    /// ``evaluate(_:asOf:)`` says which.
    public func compute(_ history: WorkspaceHistory, asOf: Timestamp) -> [SignalValue] {
        evaluate(history, asOf: asOf).signals
    }

    /// The signals to emit, and the signal types whose value was not finite (a computation
    /// failure to report: sums of huge metadata numbers can overflow).
    public func evaluate(_ history: WorkspaceHistory, asOf: Timestamp) -> (signals: [SignalValue], failed: [SignalType])
    {
        let all = computeAll(history, asOf: asOf)
        return (all.filter { $0.value.isFinite }, all.filter { !$0.value.isFinite }.map(\.type))
    }

    private func computeAll(_ history: WorkspaceHistory, asOf: Timestamp) -> [SignalValue] {
        aggregates(history, asOf: asOf).signals(thresholds: thresholds, asOf: asOf)
    }

    /// The exact integer partials every signal is finished from, counted from scratch: the
    /// recomputation that the incremental state (``WorkspaceState``) must equal.
    public func aggregates(_ history: WorkspaceHistory, asOf: Timestamp) -> SignalAggregates {
        let windowStart = Timestamp(microseconds: asOf.microseconds - SignalComputer.window)
        func inWindow(_ t: Timestamp) -> Bool { t > windowStart && t <= asOf }
        // Only what happened by as_of exists; a stable order makes every tie explicit.
        let events = history.events.filter { $0.timestamp <= asOf }
            .sorted { ($0.timestamp, $0.eventID) < ($1.timestamp, $1.eventID) }
        let actions = history.actions.filter { $0.timestamp <= asOf }

        var actsByEntity: [String: [BusinessEvent]] = [:]
        for event in events where event.eventType == "recommendation.acted" {
            actsByEntity[event.entityID, default: []].append(event)
        }
        let pairs: [Pair] = events.filter { $0.eventType == "recommendation.given" }.map { given in
            Pair(given: given, act: actsByEntity[given.entityID]?.first { $0.timestamp >= given.timestamp })
        }
        let actedInWindow = pairs.filter { $0.act.map { inWindow($0.timestamp) } ?? false }
        let givensInWindow = pairs.filter { inWindow($0.given.timestamp) }

        var result = SignalAggregates()
        result.used =
            history.events.filter { inWindow($0.timestamp) }.count
            + history.actions.filter { inWindow($0.timestamp) }.count
        let views = events.filter { $0.eventType == "page.viewed" }
        for pair in actedInWindow {
            guard let act = pair.act else { continue }
            let latency = act.timestamp.microseconds - pair.given.timestamp.microseconds
            let viewed = views.filter {
                $0.actorUserID == act.actorUserID && $0.timestamp > pair.given.timestamp && $0.timestamp < act.timestamp
            }.count
            result.acts.add(ActPartial(latency: latency, views: viewed))
        }
        result.newestAction = actions.map(\.timestamp.microseconds).max()
        let week: Int64 = 7 * Timestamp.microsecondsPerDay
        result.actionsThisWeek = actions.filter { $0.timestamp.microseconds > asOf.microseconds - week }.count
        result.actionsLastWeek =
            actions.filter {
                $0.timestamp.microseconds > asOf.microseconds - 2 * week
                    && $0.timestamp.microseconds <= asOf.microseconds - week
            }.count
        for pair in givensInWindow {
            result.givens.add(
                GivenPartial(
                    expected: pair.given.number("expected_value"), acted: pair.act != nil,
                    realized: pair.act.map { $0.number("realized_value") }))
        }
        let completed = Set(events.filter { $0.eventType == "workflow.completed" }.map(\.entityID))
        for event in events where event.eventType == "workflow.started" && inWindow(event.timestamp) {
            result.workflows.add(WorkflowPartial(started: 1, done: completed.contains(event.entityID) ? 1 : 0))
        }
        for event in events where event.eventType == "workflow.abandoned" && inWindow(event.timestamp) {
            if let stage = event.string("stage") { result.stages.add(CountsPartial(stage)) }
        }
        let ignoreAfter = Int64(thresholds.value("missed.ignore_after_days") * SignalComputer.day)
        result.missed =
            givensInWindow.filter { pair in
                guard pair.act == nil, asOf.microseconds - pair.given.timestamp.microseconds >= ignoreAfter,
                    let actionType = pair.given.string("action_type")
                else { return false }
                return history.peers.count(
                    subVertical: pair.given.subVerticalID, actionType: actionType, excluding: history.workspaceID,
                    after: windowStart, upTo: asOf) > 0
            }.count
        return result
    }
}

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

        var signals: [SignalValue] = []

        // decision_latency, execution_consistency: latencies of acts in W, in seconds.
        let latencies = actedInWindow.compactMap { pair in
            pair.act.map { Double($0.timestamp.microseconds - pair.given.timestamp.microseconds) / 1_000_000 }
        }
        if !latencies.isEmpty {
            let mean = latencies.reduce(0, +) / Double(latencies.count)
            signals.append(SignalValue(.decisionLatency, mean))
            if latencies.count >= 2 {
                let variance = latencies.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(latencies.count)
                signals.append(SignalValue(.executionConsistency, variance.squareRoot()))
            }
        }

        // idle_decay: days since the newest user action.
        if let newest = actions.map(\.timestamp).max() {
            signals.append(
                SignalValue(.idleDecay, Double(asOf.microseconds - newest.microseconds) / SignalComputer.day))
        }

        // momentum: actions this week ÷ actions the week before.
        let week: Int64 = 7 * Timestamp.microsecondsPerDay
        let thisWeek = actions.filter { $0.timestamp.microseconds > asOf.microseconds - week }.count
        let lastWeek = actions.filter {
            $0.timestamp.microseconds > asOf.microseconds - 2 * week
                && $0.timestamp.microseconds <= asOf.microseconds - week
        }.count
        if lastWeek > 0 {
            signals.append(SignalValue(.momentum, Double(thisWeek) / Double(lastWeek)))
        }

        // nba_adoption_rate: givens in W that have an act.
        if !givensInWindow.isEmpty {
            let adopted = givensInWindow.filter { $0.act != nil }.count
            signals.append(SignalValue(.nbaAdoptionRate, Double(adopted) / Double(givensInWindow.count)))
        }

        // follow_through_rate: workflows started in W that were completed by as_of.
        let started = events.filter { $0.eventType == "workflow.started" && inWindow($0.timestamp) }
        if !started.isEmpty {
            let completed = Set(events.filter { $0.eventType == "workflow.completed" }.map(\.entityID))
            let done = started.filter { completed.contains($0.entityID) }.count
            signals.append(SignalValue(.followThroughRate, Double(done) / Double(started.count)))
        }

        // drop_off_point: the most frequent stage of abandonment in W; ties by code points.
        var stageCounts: [String: Int] = [:]
        for event in events where event.eventType == "workflow.abandoned" && inWindow(event.timestamp) {
            if let stage = event.string("stage") { stageCounts[stage, default: 0] += 1 }
        }
        let ranked = stageCounts.sorted { a, b in
            a.value != b.value
                ? a.value > b.value : a.key.unicodeScalars.lexicographicallyPrecedes(b.key.unicodeScalars)
        }
        if let top = ranked.first {
            signals.append(SignalValue(.dropOffPoint, Double(top.value), label: top.key))
        }

        // hesitation_index: page views by the actor strictly between given and act.
        let expectedViews = thresholds.value("hesitation.expected_views")
        if !actedInWindow.isEmpty, expectedViews > 0 {
            let views = events.filter { $0.eventType == "page.viewed" }
            let counts = actedInWindow.compactMap { pair -> Int? in
                guard let act = pair.act else { return nil }
                return views.filter {
                    $0.actorUserID == act.actorUserID && $0.timestamp > pair.given.timestamp
                        && $0.timestamp < act.timestamp
                }.count
            }
            let mean = Double(counts.reduce(0, +)) / Double(counts.count)
            signals.append(SignalValue(.hesitationIndex, mean / expectedViews))
        }

        // missed_opportunity_count and execution_gap: emitted whenever W holds a given.
        if !givensInWindow.isEmpty {
            let ignoreAfter = Int64(thresholds.value("missed.ignore_after_days") * SignalComputer.day)
            let missed = givensInWindow.filter { pair in
                guard pair.act == nil, asOf.microseconds - pair.given.timestamp.microseconds >= ignoreAfter,
                    let actionType = pair.given.string("action_type")
                else { return false }
                return history.peers.count(
                    subVertical: pair.given.subVerticalID, actionType: actionType, excluding: history.workspaceID,
                    after: windowStart, upTo: asOf) > 0
            }
            signals.append(SignalValue(.missedOpportunityCount, Double(missed.count)))
            let expected = givensInWindow.map { $0.given.number("expected_value") ?? 0 }.reduce(0, +)
            let realized = givensInWindow.map { $0.act?.number("realized_value") ?? 0 }.reduce(0, +)
            signals.append(SignalValue(.executionGap, expected - realized))
        }
        return signals
    }
}

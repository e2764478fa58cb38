import BTECompute
import BTEDomain
import PropertyBased
import Testing

/// A small deterministic generator (SplitMix64), so a failing seed replays the same stream.
private struct Stream {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func int(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
    mutating func pick<T>(_ values: [T]) -> T { values[int(values.count)] }
}

private let ws = "11111111-1111-4111-8111-111111111111"
private let peerWS = "22222222-2222-4222-8222-222222222222"
private let subVerticals = ["sv-a", "sv-b"]
private let actionTypes = ["upsell", "follow_up", "call"]
private let day = Timestamp.microsecondsPerDay
private let base: Int64 = 1_767_225_600_000_000  // 2026-01-01T00:00:00Z

private func json(_ text: String) -> JSONValue { (try? JSONParser.parse(Array(text.utf8))) ?? .object([]) }

/// A random business stream of one workspace in log order: mostly in time order, some events
/// late by up to 40 days, some at equal times; every kind of event the computations read.
private func randomStream(_ seed: UInt64, count: Int) -> (events: [Either], peers: [PeerSuccess]) {
    var random = Stream(state: seed)
    var clock = base
    var out: [Either] = []
    for index in 0..<count {
        // Steps from 0 (equal times) to ~9 days.
        clock += [0, 60_000_000, 3_600_000_000, day, 3 * day, 9 * day][random.int(6)]
        var time = clock
        if random.int(6) == 0 { time -= Int64(random.int(40)) * day + Int64(random.int(24)) * 3_600_000_000 }
        let at = Timestamp(microseconds: time)
        let id = String(format: "%08d", random.int(100_000_000)) + "-\(index)"
        let actor = random.pick(["actor-a", "actor-b"])
        if random.int(8) == 0 {
            out.append(.action(UserAction(actionID: id, workspaceID: ws, actorUserID: actor, timestamp: at)))
            continue
        }
        let (type, entity, metadata): (String, String, String) =
            switch random.int(13) {
            case 0, 1:
                (
                    "recommendation.given", "r\(random.int(5))",
                    random.int(4) == 0
                        ? #"{"expected_value":12.5}"#
                        : #"{"action_type":"\#(random.pick(actionTypes))","expected_value":\#(random.int(300))}"#
                )
            case 2, 3:
                (
                    "recommendation.acted", "r\(random.int(5))",
                    random.int(3) == 0
                        ? #"{"outcome":"failure"}"#
                        : #"{"outcome":"success","realized_value":\#(random.int(200)).25}"#
                )
            case 4: ("page.viewed", "p\(random.int(3))", "{}")
            case 5: ("workflow.started", "w\(random.int(4))", "{}")
            case 6: ("workflow.completed", "w\(random.int(4))", "{}")
            case 7:
                (
                    "workflow.abandoned", "w\(random.int(4))",
                    random.int(4) == 0 ? "{}" : #"{"stage":"s\#(random.int(3))"}"#
                )
            case 8: (random.pick(["deal.created", "deal.created", "deal.stage_changed"]), "d\(random.int(5))", "{}")
            case 9: (random.pick(["deal.won", "deal.lost"]), "d\(random.int(5))", "{}")
            case 10:
                ("order.created", "o\(index)", random.int(5) == 0 ? "{}" : #"{"customer_id":"c\#(random.int(4))"}"#)
            case 11: ("contact.engaged", "c\(random.int(4))", "{}")
            default: ("workflow.started", "w\(random.int(4))", "{}")
            }
        out.append(
            .event(
                BusinessEvent(
                    eventID: id, eventType: type, entityID: entity, workspaceID: ws,
                    subVerticalID: random.pick(subVerticals), actorUserID: actor, timestamp: at,
                    metadata: json(metadata))))
    }
    var peers: [PeerSuccess] = []
    for _ in 0..<random.int(12) {
        peers.append(
            PeerSuccess(
                workspaceID: random.pick([peerWS, ws]), subVerticalID: random.pick(subVerticals),
                actionType: random.pick(actionTypes),
                timestamp: Timestamp(microseconds: base + Int64(random.int(200)) * day)))
    }
    return (out, peers)
}

private enum Either {
    case event(BusinessEvent)
    case action(UserAction)
}

@Suite struct IncrementalStateTests {
    /// After every event of a random stream (late and equal times included), the incremental
    /// state's aggregates equal a recomputation over everything applied, at the state's as_of.
    @Test func incrementalAggregatesEqualARecomputationAfterEveryEvent() async {
        await propertyCheck(count: 300, input: Gen.int64(in: 0...Int64.max), Gen.int(in: 0...3)) { seed, choice in
            let ignore = [0.0, 3, 7, 45][choice]
            let thresholds = Thresholds(
                version: 2, values: ["hesitation.expected_views": 3, "missed.ignore_after_days": ignore])
            let (stream, successes) = randomStream(UInt64(seed), count: 70)
            let peers = PeerIndex(successes)
            var state = WorkspaceState(workspaceID: ws)
            var history = WorkspaceHistory(workspaceID: ws, peers: peers)
            for (index, item) in stream.enumerated() {
                switch item {
                case .event(let event):
                    state.apply(event)
                    history.events.append(event)
                case .action(let action):
                    state.apply(action)
                    history.actions.append(action)
                }
                guard let micros = state.asOf else { continue }
                let asOf = Timestamp(microseconds: micros)
                let full = SignalComputer(thresholds: thresholds).aggregates(history, asOf: asOf)
                let incremental = state.signalAggregates(thresholds: thresholds, peers: peers)
                #expect(incremental == full, "seed \(seed), event \(index): signals")
                let fullInsights = InsightComputer().aggregates(history, asOf: asOf)
                #expect(state.insightAggregates(peers: peers) == fullInsights, "seed \(seed), event \(index): insights")
                if incremental != full || state.insightAggregates(peers: peers) != fullInsights { return }
            }
        }
    }

    /// The same for a user's vector, interactions late by up to 40 days included.
    @Test func userStateVectorsEqualARecomputationAfterEveryInteraction() async {
        await propertyCheck(count: 300, input: Gen.int64(in: 0...Int64.max)) { seed in
            var random = Stream(state: UInt64(seed))
            let user = UserKey(workspaceID: ws, userID: "u-1")
            var state = UserState(user: user)
            var all: [Interaction] = []
            var clock = base
            for index in 0..<60 {
                clock += [0, 1_000_000, 600_000_000, day, 4 * day][random.int(5)]
                var time = clock
                if random.int(5) == 0 { time -= Int64(random.int(40)) * day }
                let interaction = Interaction(
                    eventID: "e\(random.int(1000))-\(index)", workspaceID: ws, userID: "u-1",
                    sessionID: "s\(random.int(4))", timestamp: Timestamp(microseconds: time),
                    eventType: random.pick(["tap", "expand", "scroll"]),
                    capsuleType: random.int(3) == 0 ? nil : random.pick(["task", "chart"]),
                    durationMilliseconds: random.int(3) == 0 ? nil : random.int(900), success: random.int(4) != 0)
                state.apply(interaction)
                all.append(interaction)
                let asOf = Timestamp(microseconds: state.asOf ?? 0)
                let expected = VectorComputer().compute(user: user, interactions: all, asOf: asOf)
                let got = state.vector()
                #expect(
                    got?.json(thresholdsVersion: 1, computedFrom: 0)
                        == expected?.json(thresholdsVersion: 1, computedFrom: 0),
                    "seed \(seed), interaction \(index)")
                if got?.json(thresholdsVersion: 1, computedFrom: 0)
                    != expected?.json(thresholdsVersion: 1, computedFrom: 0)
                {
                    return
                }
            }
        }
    }

    /// Successes inserted one by one answer as an index built from all of them at once.
    @Test func peerIndexInsertsEqualABuiltIndex() async {
        await propertyCheck(count: 200, input: Gen.int64(in: 0...Int64.max)) { seed in
            var random = Stream(state: UInt64(seed))
            var peers: [PeerSuccess] = []
            var inserted = PeerIndex([])
            for _ in 0..<random.int(40) {
                let peer = PeerSuccess(
                    workspaceID: random.pick([ws, peerWS, "w3"]), subVerticalID: random.pick(subVerticals),
                    actionType: random.pick(actionTypes),
                    timestamp: Timestamp(microseconds: base + Int64(random.int(60)) * day))
                peers.append(peer)
                inserted.insert(peer)
            }
            let built = PeerIndex(peers)
            #expect(inserted.count == peers.count)
            for subVertical in subVerticals {
                #expect(inserted.actionTypes(in: subVertical) == built.actionTypes(in: subVertical))
                for type in actionTypes {
                    let after = Timestamp(microseconds: base + Int64(random.int(60)) * day)
                    let upTo = Timestamp(microseconds: after.microseconds + Int64(random.int(40)) * day)
                    for excluding in [ws, peerWS] {
                        #expect(
                            inserted.count(
                                subVertical: subVertical, actionType: type, excluding: excluding, after: after,
                                upTo: upTo)
                                == built.count(
                                    subVertical: subVertical, actionType: type, excluding: excluding, after: after,
                                    upTo: upTo))
                    }
                }
            }
        }
    }

    /// Every event moves as_of: to its time, or one microsecond past the last as_of.
    @Test func asOfMovesWithEveryEvent() {
        #expect(WorkspaceState.nextAsOf(after: nil, eventTime: 50) == 50)
        #expect(WorkspaceState.nextAsOf(after: 50, eventTime: 80) == 80)
        #expect(WorkspaceState.nextAsOf(after: 80, eventTime: 80) == 81)
        #expect(WorkspaceState.nextAsOf(after: 81, eventTime: 10) == 82)
    }

    /// A hand-worked case: a given acted on late (the act arrives after a newer event) moves
    /// from "unacted" to "acted"; an older act arriving later becomes the first act.
    @Test func aLateActRepairsThePairs() {
        let thresholds = Thresholds()
        var state = WorkspaceState(workspaceID: ws)
        func event(_ id: String, _ type: String, _ days: Int64, _ metadata: String) -> BusinessEvent {
            BusinessEvent(
                eventID: id, eventType: type, entityID: "r1", workspaceID: ws, subVerticalID: "sv-a",
                actorUserID: "actor-a", timestamp: Timestamp(microseconds: base + days * day), metadata: json(metadata))
        }
        state.apply(event("1", "recommendation.given", 0, #"{"expected_value":100}"#))
        state.apply(event("2", "recommendation.acted", 4, #"{"realized_value":30}"#))
        // Latency 4 days; gap 100 − 30.
        var aggregates = state.signalAggregates(thresholds: thresholds, peers: PeerIndex([]))
        #expect(aggregates.acts.count == 1)
        #expect(aggregates.acts.latency == Int128(4 * day))
        #expect(aggregates.givens.expected.value - aggregates.givens.realized.value == 70)
        // An act at day 1 arrives later: it is the first act; latency 1 day; realized 10.
        state.apply(event("3", "recommendation.acted", 1, #"{"realized_value":10}"#))
        aggregates = state.signalAggregates(thresholds: thresholds, peers: PeerIndex([]))
        // Late: as_of moves one microsecond past the act's.
        #expect(state.asOf == base + 4 * day + 1)
        #expect(aggregates.acts.count == 1)
        #expect(aggregates.acts.latency == Int128(day))
        #expect(aggregates.givens.expected.value - aggregates.givens.realized.value == 90)
        #expect(aggregates.used == 3)
    }
}

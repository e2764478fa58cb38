import BTECompute
import BTEDomain
import Testing

private func t(_ text: String) -> Timestamp {
    Timestamp(rfc3339: text) ?? Timestamp(microseconds: -1)
}

private let ws = "11111111-1111-4111-8111-111111111111"
private let peerWS = "22222222-2222-4222-8222-222222222222"
private let subVertical = "33333333-3333-4333-8333-333333333333"
private let otherSubVertical = "44444444-4444-4444-8444-444444444444"
private let actorA = "aaaaaaaa-0000-4000-8000-00000000000a"
private let actorB = "bbbbbbbb-0000-4000-8000-00000000000b"

private func event(_ type: String, _ entity: String, _ at: String, actor: String = actorA, metadata: String = "{}")
    -> BusinessEvent
{
    let meta = (try? JSONParser.parse(Array(metadata.utf8))) ?? .object([])
    return BusinessEvent(
        eventID: "\(type)|\(entity)|\(at)|\(actor)", eventType: type, entityID: entity, workspaceID: ws,
        subVerticalID: subVertical, actorUserID: actor, timestamp: t(at), metadata: meta)
}

private func action(_ at: String) -> UserAction {
    return UserAction(actionID: at, workspaceID: ws, actorUserID: actorA, timestamp: t(at))
}

/// as_of 2026-02-01T00:00Z, so W = (2026-01-02T00:00Z, 2026-02-01T00:00Z].
private let asOf = t("2026-02-01T00:00:00Z")

private func value(_ signals: [SignalValue], _ type: SignalType) -> Double? {
    signals.first { $0.type == type }?.value
}

@Suite struct SignalComputerTests {
    let computer = SignalComputer(thresholds: Thresholds())

    /// One workspace history exercising every signal; each expected value is worked out below.
    func fullHistory() -> WorkspaceHistory {
        var events: [BusinessEvent] = [
            // Acted in W, latency 3600 s; a later second act on R1 is ignored.
            event(
                "recommendation.given", "R1", "2026-01-10T00:00:00Z",
                metadata: #"{"action_type":"follow_up","expected_value":100}"#),
            event(
                "recommendation.acted", "R1", "2026-01-10T01:00:00Z",
                metadata: #"{"outcome":"success","realized_value":80}"#),
            event(
                "recommendation.acted", "R1", "2026-01-15T00:00:00Z",
                metadata: #"{"outcome":"success","realized_value":999}"#),
            // Acted in W, latency 10800 s, no realized_value (counts as 0).
            event(
                "recommendation.given", "R2", "2026-01-11T00:00:00Z",
                metadata: #"{"action_type":"follow_up","expected_value":200}"#),
            event("recommendation.acted", "R2", "2026-01-11T03:00:00Z", metadata: #"{"outcome":"failure"}"#),
            // Given before W, acted in W: latency 2 h = 7200 s counts; the given is not "in W".
            event(
                "recommendation.given", "R3", "2026-01-01T23:00:00Z",
                metadata: #"{"action_type":"upsell","expected_value":1000}"#),
            event("recommendation.acted", "R3", "2026-01-02T01:00:00Z"),
            // Given and acted before W: ignored.
            event("recommendation.given", "R0", "2025-12-01T00:00:00Z"),
            event("recommendation.acted", "R0", "2025-12-02T00:00:00Z"),
            // In W, never acted, 12 days old, upsell: a missed opportunity (a peer succeeded).
            event(
                "recommendation.given", "R4", "2026-01-20T00:00:00Z",
                metadata: #"{"action_type":"upsell","expected_value":50}"#),
            // In W, never acted, only 4 days old: not yet missed.
            event("recommendation.given", "R5", "2026-01-28T00:00:00Z", metadata: #"{"action_type":"upsell"}"#),
            // Page views for hesitation (R1: 1 counted, R2: 2 counted).
            event("page.viewed", "P", "2026-01-10T00:00:00Z"),  // at the given: not strictly between
            event("page.viewed", "P", "2026-01-10T00:30:00Z"),
            event("page.viewed", "P", "2026-01-10T00:45:00Z", actor: actorB),  // another actor
            event("page.viewed", "P", "2026-01-11T01:00:00Z"),
            event("page.viewed", "P", "2026-01-11T02:00:00Z"),
            event("page.viewed", "P", "2026-01-11T03:00:00Z"),  // at the act: not strictly between
            // Workflows: WF1 and WF2 started in W, WF1 completed; WF3 started before W.
            event("workflow.started", "WF1", "2026-01-05T00:00:00Z"),
            event("workflow.started", "WF2", "2026-01-06T00:00:00Z"),
            event("workflow.started", "WF3", "2025-12-30T00:00:00Z"),
            event("workflow.completed", "WF1", "2026-01-07T00:00:00Z"),
            event("workflow.completed", "WF3", "2026-01-08T00:00:00Z"),
            // Abandonment: discovery 2, proposal 2 (tie → "discovery"), contract 1, one without stage.
            event("workflow.abandoned", "WF4", "2026-01-12T00:00:00Z", metadata: #"{"stage":"proposal"}"#),
            event("workflow.abandoned", "WF5", "2026-01-13T00:00:00Z", metadata: #"{"stage":"proposal"}"#),
            event("workflow.abandoned", "WF6", "2026-01-14T00:00:00Z", metadata: #"{"stage":"discovery"}"#),
            event("workflow.abandoned", "WF7", "2026-01-15T00:00:00Z", metadata: #"{"stage":"discovery"}"#),
            event("workflow.abandoned", "WF8", "2026-01-16T00:00:00Z", metadata: #"{"stage":"contract"}"#),
            event("workflow.abandoned", "WF9", "2026-01-17T00:00:00Z"),
            // Before W: three "zzz" abandonments that must not win.
            event("workflow.abandoned", "WFa", "2025-12-10T00:00:00Z", metadata: #"{"stage":"zzz"}"#),
            event("workflow.abandoned", "WFb", "2025-12-11T00:00:00Z", metadata: #"{"stage":"zzz"}"#),
            event("workflow.abandoned", "WFc", "2025-12-12T00:00:00Z", metadata: #"{"stage":"zzz"}"#),
            // After as_of: does not exist yet.
            event("recommendation.acted", "R4", "2026-02-02T00:00:00Z"),
        ]
        events.append(event("page.viewed", "P", "2026-01-02T01:00:00Z"))  // R3: at its act, not between
        events.append(event("page.viewed", "P", "2026-01-02T00:00:00Z"))  // R3: 1 counted
        let actions = [
            // This week: 3.
            action("2026-01-31T12:00:00Z"), action("2026-01-29T00:00:00Z"), action("2026-01-26T00:00:00Z"),
            // Last week: 2 (01-25T00:00 = as_of − 7 d belongs here).
            action("2026-01-25T00:00:00Z"), action("2026-01-20T00:00:00Z"),
            action("2026-01-18T00:00:00Z"),  // = as_of − 14 d: neither week
            action("2026-02-03T00:00:00Z"),  // after as_of
        ]
        let peers = [
            PeerSuccess(
                workspaceID: peerWS, subVerticalID: subVertical, actionType: "upsell",
                timestamp: t("2026-01-25T00:00:00Z")),
            PeerSuccess(
                workspaceID: peerWS, subVerticalID: otherSubVertical, actionType: "follow_up",
                timestamp: t("2026-01-25T00:00:00Z")),
        ]
        return WorkspaceHistory(workspaceID: ws, events: events, actions: actions, peerSuccesses: peers)
    }

    @Test func everySignalByHand() {
        let signals = computer.compute(fullHistory(), asOf: asOf)
        #expect(Set(signals.map(\.type)) == Set(SignalType.allCases))
        // Acts in W: R1 3600 s, R2 10800 s, R3 7200 s → mean 7200.
        #expect(value(signals, .decisionLatency) == 7200)
        // Population stddev of {3600, 10800, 7200}: sqrt((3600² + 3600² + 0) / 3) = 3600·sqrt(2/3).
        #expect(abs((value(signals, .executionConsistency) ?? 0) - 3600 * (2.0 / 3.0).squareRoot()) < 1e-9)
        // Newest action 2026-01-31T12:00 → 0.5 days.
        #expect(value(signals, .idleDecay) == 0.5)
        // 3 this week ÷ 2 last week.
        #expect(value(signals, .momentum) == 1.5)
        // Givens in W: R1, R2, R4, R5; acted: R1, R2 → 2/4.
        #expect(value(signals, .nbaAdoptionRate) == 0.5)
        // Started in W: WF1, WF2; completed: WF1 → 1/2.
        #expect(value(signals, .followThroughRate) == 0.5)
        let dropOff = signals.first { $0.type == .dropOffPoint }
        #expect(dropOff?.value == 2)
        #expect(dropOff?.label == "discovery")
        // Views strictly between given and act by the actor: R1 1, R2 2, R3 1 → mean 4/3, ÷ 3.
        #expect(abs((value(signals, .hesitationIndex) ?? 0) - 4.0 / 9.0) < 1e-12)
        // R4: unacted, 12 days old, upsell succeeded at a peer of the same sub-vertical. R5 is too young.
        #expect(value(signals, .missedOpportunityCount) == 1)
        // Expected 100 + 200 + 50 + 0 (R5) = 350; realized 80 + 0 = 80.
        #expect(value(signals, .executionGap) == 270)
    }

    @Test func resultDoesNotDependOnInputOrder() {
        var history = fullHistory()
        let forward = computer.compute(history, asOf: asOf)
        history.events.reverse()
        history.actions.reverse()
        #expect(computer.compute(history, asOf: asOf) == forward)
    }

    @Test func noDataEmitsNothing() {
        #expect(computer.compute(WorkspaceHistory(workspaceID: ws), asOf: asOf).isEmpty)
    }

    @Test func divisionByZeroIsNotEmitted() {
        // Actions only this week: idle_decay yes, momentum no (last week is empty).
        let history = WorkspaceHistory(workspaceID: ws, actions: [action("2026-01-30T00:00:00Z")])
        let signals = computer.compute(history, asOf: asOf)
        #expect(signals.map(\.type) == [.idleDecay])
        #expect(value(signals, .idleDecay) == 2)
    }

    @Test func windowBoundaries() {
        // A given exactly 30 days before as_of is outside W; one exactly at as_of is inside.
        let outside = event("recommendation.given", "B1", "2026-01-02T00:00:00Z", metadata: #"{"expected_value":10}"#)
        let inside = event("recommendation.given", "B2", "2026-02-01T00:00:00Z", metadata: #"{"expected_value":5}"#)
        let signals = computer.compute(WorkspaceHistory(workspaceID: ws, events: [outside, inside]), asOf: asOf)
        #expect(value(signals, .nbaAdoptionRate) == 0)  // 0 of 1
        #expect(value(signals, .executionGap) == 5)
        #expect(value(signals, .missedOpportunityCount) == 0)
        #expect(value(signals, .decisionLatency) == nil)
    }

    @Test func nonFiniteValuesAreNotEmitted() {
        // 1e308 + 1e308 overflows to infinity: execution_gap is undefined; the rest still comes.
        let a = event("recommendation.given", "H1", "2026-01-20T00:00:00Z", metadata: #"{"expected_value":1e308}"#)
        let b = event("recommendation.given", "H2", "2026-01-21T00:00:00Z", metadata: #"{"expected_value":1e308}"#)
        let signals = computer.compute(WorkspaceHistory(workspaceID: ws, events: [a, b]), asOf: asOf)
        #expect(signals.map(\.type) == [.nbaAdoptionRate, .missedOpportunityCount])
        #expect(value(signals, .nbaAdoptionRate) == 0)
    }

    @Test func missedOpportunityAgeBoundary() {
        // Exactly 7 days old at as_of counts (at least the threshold); 7 days less a second does not.
        let old = event("recommendation.given", "M1", "2026-01-25T00:00:00Z", metadata: #"{"action_type":"upsell"}"#)
        let young = event("recommendation.given", "M2", "2026-01-25T00:00:01Z", metadata: #"{"action_type":"upsell"}"#)
        let peer = PeerSuccess(
            workspaceID: peerWS, subVerticalID: subVertical, actionType: "upsell", timestamp: t("2026-01-30T00:00:00Z"))
        let signals = computer.compute(
            WorkspaceHistory(workspaceID: ws, events: [old, young], peerSuccesses: [peer]), asOf: asOf)
        #expect(value(signals, .missedOpportunityCount) == 1)
        // The same success by this workspace itself is no evidence.
        let own = PeerSuccess(
            workspaceID: ws, subVerticalID: subVertical, actionType: "upsell", timestamp: t("2026-01-30T00:00:00Z"))
        #expect(
            value(
                computer.compute(WorkspaceHistory(workspaceID: ws, events: [old], peerSuccesses: [own]), asOf: asOf),
                .missedOpportunityCount) == 0)
    }

    @Test func actsWithoutAGivenAreIgnored() {
        let lonelyAct = event("recommendation.acted", "X", "2026-01-20T00:00:00Z", metadata: #"{"realized_value":5}"#)
        #expect(computer.compute(WorkspaceHistory(workspaceID: ws, events: [lonelyAct]), asOf: asOf).isEmpty)
    }

    @Test func thresholdsChangeInterpretationOnly() {
        let history = fullHistory()
        let strict = SignalComputer(
            thresholds: Thresholds(
                version: 2, values: ["hesitation.expected_views": 1, "missed.ignore_after_days": 14]))
        let signals = strict.compute(history, asOf: asOf)
        #expect(abs((value(signals, .hesitationIndex) ?? 0) - 4.0 / 3.0) < 1e-12)  // 4/3 ÷ 1
        #expect(value(signals, .missedOpportunityCount) == 0)  // R4 is 12 < 14 days old
        #expect(value(signals, .decisionLatency) == 7200)
    }
}

@Suite struct SignalRecordTests {
    @Test func uuidV5MatchesTheRFCAlgorithm() {
        // Python: uuid.uuid5(uuid.NAMESPACE_DNS, "python.org")
        #expect(
            UUIDv5.make(namespace: UUIDv5.dnsNamespace, name: "python.org") == "886313e1-3b8a-5372-9b90-0c9aee199e5d")
    }

    @Test func recordJSONIsStable() {
        let record = SignalRecord(
            workspaceID: ws, signal: SignalValue(.dropOffPoint, 2, label: "discovery"), asOf: asOf,
            thresholdsVersion: 1, computedFrom: 12)
        let expected =
            "{\"id\":\"\(record.id)\",\"entity_type\":\"workspace\",\"entity_id\":\"\(ws)\","
            + "\"signal_type\":\"drop_off_point\",\"signal_value\":2,\"label\":\"discovery\","
            + "\"as_of\":\"2026-02-01T00:00:00.000000Z\",\"thresholds_version\":1,\"computed_from\":12,"
            + "\"engine_version\":\"bte-engine/1\"}"
        #expect(String(decoding: record.json(), as: UTF8.self) == expected)
        // Same identity, same id; another as_of or thresholds version, another id.
        #expect(
            SignalRecord(
                workspaceID: ws, signal: SignalValue(.dropOffPoint, 3, label: "x"), asOf: asOf, thresholdsVersion: 1,
                computedFrom: 1
            ).id == record.id)
        #expect(
            SignalRecord(
                workspaceID: ws, signal: SignalValue(.dropOffPoint, 2), asOf: asOf, thresholdsVersion: 2,
                computedFrom: 12
            ).id != record.id)
        #expect(formatNumber(0.5) == "0.5")
        #expect(formatNumber(-270) == "-270")
    }
}

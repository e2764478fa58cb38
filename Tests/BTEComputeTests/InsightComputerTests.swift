import BTECompute
import BTEDomain
import Testing

private func t(_ text: String) -> Timestamp { Timestamp(rfc3339: text) ?? Timestamp(microseconds: -1) }

private let ws = "11111111-1111-4111-8111-111111111111"
private let sub = "33333333-3333-4333-8333-333333333333"

private func event(_ type: String, _ entity: String, _ day: String, _ metadata: String = "{}") -> BusinessEvent {
    BusinessEvent(
        eventID: "\(type)|\(entity)|\(day)", eventType: type, entityID: entity, workspaceID: ws, subVerticalID: sub,
        actorUserID: "a", timestamp: t(day + "T00:00:00Z"),
        metadata: (try? JSONParser.parse(Array(metadata.utf8))) ?? .object([]))
}

/// as_of 2026-07-01: the last 90 days start after 2026-04-02, the 90 before after 2026-01-02;
/// the last 14 days after 2026-06-17, the 14 before after 2026-06-03; the last 30 after 2026-06-01.
@Suite struct InsightComputerTests {
    let asOf = t("2026-07-01T00:00:00Z")

    func history() -> WorkspaceHistory {
        var events = [
            // Won in the last 90 days: 30 and 50 days; in the 90 before: 32 days.
            event("deal.created", "D1", "2026-04-01"), event("deal.won", "D1", "2026-05-01"),
            event("deal.created", "D2", "2026-05-01"), event("deal.won", "D2", "2026-06-20"),
            event("deal.created", "D3", "2026-01-01"), event("deal.won", "D3", "2026-02-02"),
            // Open: D4 last touched 21 days ago (stalled), D5 6 days ago; D6 lost.
            event("deal.created", "D4", "2026-06-01"),
            event("deal.stage_changed", "D4", "2026-06-10", #"{"stage":"proposal"}"#),
            event("deal.created", "D5", "2026-06-25"),
            event("deal.created", "D6", "2026-05-01"), event("deal.lost", "D6", "2026-05-05"),
            // Own given of upsell in the last 30 days.
            event("recommendation.given", "R1", "2026-06-20", #"{"action_type":"upsell"}"#),
        ]
        for (n, day) in ["2026-06-01", "2026-06-05", "2026-06-10"].enumerated() {
            events.append(event("order.created", "O1\(n)", day, #"{"customer_id":"C1"}"#))
        }
        events.append(event("order.created", "O20", "2026-06-02", #"{"customer_id":"C2"}"#))
        for (n, day) in ["2026-05-01", "2026-05-02"].enumerated() {
            events.append(event("order.created", "O3\(n)", day, #"{"customer_id":"C3"}"#))
        }
        events.append(event("order.created", "O40", "2026-03-01", #"{"customer_id":"C4"}"#))  // before the 90 days
        events.append(event("order.created", "O41", "2026-06-03", #"{"customer_id":"C4"}"#))
        for day in ["2026-06-20", "2026-06-25"] { events.append(event("contact.engaged", "K" + day, day)) }
        for day in ["2026-06-05", "2026-06-08", "2026-06-10", "2026-06-12", "2026-06-17"] {
            events.append(event("contact.engaged", "K" + day, day))
        }
        func peer(_ type: String, _ day: String, subVertical: String = sub) -> PeerSuccess {
            PeerSuccess(
                workspaceID: "22222222-2222-4222-8222-222222222222", subVerticalID: subVertical, actionType: type,
                timestamp: t(day + "T00:00:00Z"))
        }
        let peers =
            [
                peer("upsell", "2026-06-15"), peer("upsell", "2026-06-16"), peer("renewal", "2026-06-10"),
                peer("renewal", "2026-06-11"),
                peer("discount", "2026-06-12"),
            ]
            + (0..<5).map { _ in peer("cross_sell", "2026-06-12", subVertical: "44444444-4444-4444-8444-444444444444") }
            + (0..<9).map { _ in peer("warranty", "2026-05-01") }
        return WorkspaceHistory(workspaceID: ws, events: events, peerSuccesses: peers)
    }

    @Test func allFiveByHand() {
        let insights = InsightComputer().compute(history(), asOf: asOf)
        #expect(
            insights.map(\.type) == [
                .salesCycleVariance, .repeatCustomer, .dealStalled, .engagementDrop, .nextBestAction,
            ])
        let byType = Dictionary(uniqueKeysWithValues: insights.map { ($0.type, $0) })
        // (40 − 32) / 32 = 25 % → high.
        #expect(
            byType[.salesCycleVariance]?.message
                == "Your sales cycle is increasing by 25% this quarter (40 days vs 32).")
        #expect(byType[.salesCycleVariance]?.priority == .high)
        #expect(byType[.salesCycleVariance]?.evidence["change"] == "0.25")
        // C1 3 orders, C3 2; C2 1; C4 1 inside the 90 days.
        #expect(
            byType[.repeatCustomer]?.message == "2 customers are repeat buyers; C1 ordered 3 times in the last 90 days."
        )
        #expect(byType[.repeatCustomer]?.priority == .medium)
        #expect(byType[.dealStalled]?.message == "1 deal in your pipeline has stalled for 2+ weeks.")
        #expect(byType[.dealStalled]?.evidence["deal_ids"] == "[\"D4\"]")
        // 2 engagements against 5: a 60 % drop → high.
        #expect(
            byType[.engagementDrop]?.message
                == "Customer engagement dropped 60% in the last two weeks (2 engagements vs 5).")
        #expect(byType[.engagementDrop]?.priority == .high)
        // upsell is already recommended here; renewal (2) beats discount (1); other sub-verticals and
        // older successes don't count.
        #expect(
            byType[.nextBestAction]?.message
                == "Based on similar customers, suggest renewal: it succeeded 2 times in your sub-vertical this month.")
        #expect(byType[.nextBestAction]?.priority == .low)
    }

    @Test func nothingToSayNothingSaid() {
        #expect(InsightComputer().compute(WorkspaceHistory(workspaceID: ws), asOf: asOf).isEmpty)
    }

    @Test func smallChangesAreNotInsights() {
        // Cycles 33 days now vs 31 before: +6.5 %, under the 10 % bar.
        let events = [
            event("deal.created", "A", "2026-05-01"), event("deal.won", "A", "2026-06-03"),
            event("deal.created", "B", "2026-01-01"), event("deal.won", "B", "2026-02-01"),
        ]
        #expect(InsightComputer().compute(WorkspaceHistory(workspaceID: ws, events: events), asOf: asOf).isEmpty)
    }

    @Test func sameHistorySameInsights() {
        var reversed = history()
        reversed.events.reverse()
        #expect(InsightComputer().compute(reversed, asOf: asOf) == InsightComputer().compute(history(), asOf: asOf))
    }

    /// Evidence lists are capped: 25,000 stalled deals give their count and the first 20 ids
    /// (sorted), so an insight stays a small record.
    @Test func stalledDealEvidenceKeepsTheCountAndTheFirstTwentyIDs() throws {
        let deals = (0..<25_000).map { String(format: "D%05d", $0) }
        let history = WorkspaceHistory(workspaceID: ws, events: deals.map { event("deal.created", $0, "2026-06-01") })
        let records = InsightComputer().records(history, asOf: asOf, thresholdsVersion: 2)
        let stalled = try #require(records.first { $0.insight.type == .dealStalled })
        #expect(stalled.insight.evidence["stalled_deals"] == "25000")
        // D00000 … D00019: the 20 smallest ids.
        #expect(
            stalled.insight.evidence["deal_ids"] == "["
                + (0..<20).map { String(format: "\"D%05d\"", $0) }.joined(separator: ",") + "]")
        #expect(stalled.insight.message == "25000 deals in your pipeline have stalled for 2+ weeks.")
        #expect(stalled.json().count < 2_000)
    }
}

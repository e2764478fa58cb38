import BTEDomain
import BTEStore
import Foundation
import HTTPTypes
import Testing

@testable import BTEAPI

struct SpecTests {
    /// Every path and method the server routes is in openapi.yaml, and nothing more.
    @Test func serverAndSpecDeclareTheSamePathsAndMethods() throws {
        let spec = try JSONParser.parse(try OpenAPISpec.json())
        guard case .object(let paths)? = spec["paths"] else {
            Issue.record("the spec has no paths")
            return
        }
        var declared: [String: Set<String>] = [:]
        for (path, item) in paths {
            guard case .object(let operations) = item else { continue }
            declared[path] = Set(operations.map { $0.key.uppercased() }.filter { $0 != "PARAMETERS" })
        }
        let served = APIServer.methods.mapValues { Set($0.map(\.rawValue)) }
        #expect(declared == served)
    }

    @Test func templatesMatchOneSegmentEachAndLiteralsWin() {
        let allowed = APIServer.methods
        #expect(APIServer.methods(of: "/v1/workspaces/w/signals", in: allowed) == [.get])
        #expect(
            APIServer.methods(of: "/v1/workspaces/w/signals/momentum/history", in: allowed)
                == [.get])
        #expect(APIServer.methods(of: "/v1/workspaces//signals", in: allowed) == nil)
        #expect(APIServer.methods(of: "/v1/workspaces/a/b/signals", in: allowed) == nil)
        #expect(
            APIServer.methods(of: "/api/v1/behavioral-vectors/compute", in: allowed)
                == [.post])
        #expect(
            APIServer.methods(of: "/api/v1/behavioral-vectors/u-1", in: allowed) == [.get])
    }
}

struct DashboardTests {
    @Test func sessionsVerifyOnlyTheirOwnUnexpiredSignature() {
        let sessions = DashboardSessions()
        let hash = [UInt8](repeating: 7, count: 32)
        let cookie = sessions.issue(keyHash: hash, now: 1_000)
        #expect(sessions.verify(cookie, now: 1_001) == hash)
        // Expires after 12 h = 43,200 s: issued at 1,000, valid until 44,200 (exclusive).
        #expect(sessions.verify(cookie, now: 44_199) == hash)
        #expect(sessions.verify(cookie, now: 44_200) == nil)
        // Another process's secret, a changed hash or expiry: refused.
        #expect(DashboardSessions().verify(cookie, now: 1_001) == nil)
        var parts = cookie.split(separator: ".").map(String.init)
        parts[1] = "99999999999"
        #expect(sessions.verify(parts.joined(separator: "."), now: 1_001) == nil)
        parts = cookie.split(separator: ".").map(String.init)
        parts[0] = String(repeating: "08", count: 32)
        #expect(sessions.verify(parts.joined(separator: "."), now: 1_001) == nil)
        #expect(sessions.verify("garbage", now: 1_001) == nil)
    }

    @Test func sparklineScalesIntoTheBox() {
        // Three values 1, 3, 2 over 120 px: x = 0, 60, 120; y = 22 − (v − 1) / 2 × 20 → 22, 2, 12.
        #expect(DashboardPage.sparkline([1, 3, 2]) == "0.0,22.0 60.0,2.0 120.0,12.0")
        // Flat: the middle line.
        #expect(DashboardPage.sparkline([5, 5]) == "0.0,12.0 120.0,12.0")
        #expect(DashboardPage.sparkline([]) == "")
    }

    @Test func valuesAreEscapedInThePage() throws {
        let data = DashboardData(
            ingestRate: 2.5,
            latest: [
                #"{"id":"x","entity_type":"workspace","entity_id":"w","signal_type":"drop_off_point","#
                    + #""signal_value":2,"label":"<script>alert(1)</script>","as_of":"2026-11-02T00:00:00Z","#
                    + #""thresholds_version":1,"computed_from":1,"engine_version":"t"}"#
            ], histories: [:], insights: [], feedback: [], newestOutput: nil)
        let page = DashboardPage.render(
            workspace: "w", data: data, figures: OperationsSnapshot.Figures(),
            now: Timestamp(microseconds: 0), template: APIServer.dashboardTemplate)
        #expect(!page.contains("<script>"))
        #expect(page.contains("&lt;script&gt;"))
        #expect(page.contains(#"<td class="num" id="ingest-rate">2.5</td>"#))
        // drop_off_point reads "N abandoned at <step>", the step's label escaped.
        #expect(
            page.contains(
                #"<td class="num signal-value" data-value="2">"#
                    + #"2 abandoned at &lt;script&gt;alert(1)&lt;/script&gt;</td>"#
            ))
    }

    /// In-context deliveries as rates: 4 delivered, 3 seen (75.0%), 1 clicked of those (33.3%),
    /// 2 acted of the delivered (50.0%), none dismissed (0.0%); a type never delivered shows –.
    @Test func deliveriesAreShownAsRates() {
        var stalled = ProjectionReader.DeliveryStats(insightType: "deal_stalled")
        (stalled.delivered, stalled.suppressed, stalled.impressions, stalled.clicks, stalled.acted) = (4, 5, 3, 1, 2)
        let data = DashboardData(
            ingestRate: 0, latest: [], histories: [:], insights: [], feedback: [], newestOutput: nil,
            deliveries: [stalled, ProjectionReader.DeliveryStats(insightType: "repeat_customer")])
        let page = DashboardPage.render(
            workspace: "w", data: data, figures: OperationsSnapshot.Figures(),
            now: Timestamp(microseconds: 0), template: APIServer.dashboardTemplate)
        #expect(
            page.contains(
                #"<tr data-type="deal_stalled"><td>deal_stalled</td><td class="num">4</td><td class="num">5</td>"#
                    + #"<td class="num impression-rate">75.0%</td><td class="num click-rate">33.3%</td>"#
                    + #"<td class="num">50.0%</td><td class="num dismiss-rate">0.0%</td></tr>"#), "\(page)")
        #expect(
            page.contains(
                #"<tr data-type="repeat_customer"><td>repeat_customer</td><td class="num">0</td>"#
                    + #"<td class="num">0</td><td class="num impression-rate">–</td>"#))
    }
}

struct EngagementTests {
    @Test func latestBlockAndOneEntryPerDay() {
        let latest =
            #"{"id":"a","user_id":"u","engagement_metrics":{"total_sessions":2,"engagement_score":0.5,"#
            + #""last_active":"2026-11-02T09:00:00Z"},"as_of":"2026-11-02T10:00:00Z"}"#
        let older = #"{"engagement_metrics":{"total_sessions":1,"engagement_score":0.25}}"#
        let body = APIServer.engagement(
            user: "u", latest: latest, days: [("2026-11-01", older), ("2026-11-02", latest)])
        #expect(
            body
                == #"{"user_id":"u","total_sessions":2,"engagement_score":0.5,"#
                + #""last_active":"2026-11-02T09:00:00Z","as_of":"2026-11-02T10:00:00Z","#
                + #""history":[{"date":"2026-11-01","total_sessions":1,"engagement_score":0.25},"#
                + #"{"date":"2026-11-02","total_sessions":2,"engagement_score":0.5,"#
                + #""last_active":"2026-11-02T09:00:00Z"}]}"#
        )
    }
}

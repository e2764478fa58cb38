import BTEModels
import Testing

@Suite struct KPISeriesTests {
    static let day: Int64 = 86_400_000_000
    static let hour: Int64 = 3_600_000_000

    @Test func calendar() {
        // 1970-01-01 was a Thursday; 1970-01-05 a Monday.
        #expect(KPISeries.dayOfWeek(0) == 3)
        #expect(KPISeries.dayOfWeek(4) == 0)
        #expect(KPISeries.dayOfWeek(-1) == 2)
        // 31 + 28 days after 1970-01-01 is March 1st; 2024-01-01 is 54·365 + 13 leap days = 19,723.
        #expect(KPISeries.civil(59) == (1970, 3, 1))
        #expect(KPISeries.civil(19_723) == (2024, 1, 1))
        #expect(KPISeries.civil(19_782) == (2024, 2, 29))
        #expect(ModelJSON.day("2024-02-29") == 19_782)
        #expect(ModelJSON.date(19_782) == "2024-02-29")
        #expect(ModelJSON.day("2024-13-01") == nil && ModelJSON.day("yesterday") == nil)
        // monthly_cycle: (day − 1) / (days in month − 1).
        #expect(KPISeries.monthlyCycle(19_754) == 0)  // 2024-02-01
        #expect(KPISeries.monthlyCycle(19_782) == 1)  // 2024-02-29
        #expect(KPISeries.monthlyCycle(19_738) == 0.5)  // 2024-01-16: 15 / 30
    }

    /// A value holds from its change until the next; a change at midnight counts for that day.
    @Test func controlsHoldUntilChanged() {
        let changes = [
            ControlChange(microseconds: 12 * Self.day, values: ["rollout_pct": 0.6, "promo_voltage": 0.2]),
            ControlChange(microseconds: 10 * Self.day + 12 * Self.hour, values: ["rollout_pct": 0.3]),
        ]
        let u = KPISeries.controls(days: [9, 10, 11, 12, 13], names: KPISeries.controlNames, changes: changes)
        #expect(u == [[0, 0, 1, 0], [0.3, 0, 1, 0], [0.3, 0, 1, 0], [0.6, 0.2, 1, 0], [0.6, 0.2, 1, 0]])
    }

    @Test func outagesFlagTheDaysTheyOverlap() {
        let incidents = [
            Incident(start: 20 * Self.day + 23 * Self.hour, end: 21 * Self.day + Self.hour),
            Incident(start: 25 * Self.day, end: 26 * Self.day),  // ends exactly at midnight
            Incident(start: 30 * Self.day + 12 * Self.hour, end: nil),
        ]
        let d = KPISeries.disturbances(
            days: [19, 20, 21, 22, 25, 26, 29, 30, 31], names: ["outage_flag"], incidents: incidents)
        #expect(d.map { $0[0] } == [0, 1, 1, 0, 1, 0, 0, 1, 1])
    }

    @Test func aDayEntersOnlyWithEveryKPI() {
        let rows = [
            DailyKPIs(day: 1, dailyActiveUsers: 10, retentionD7: 0.3, revenueUSD: 5, latencyP95Ms: 100),
            DailyKPIs(day: 2, dailyActiveUsers: 12, retentionD7: nil, revenueUSD: 0, latencyP95Ms: 90),
        ]
        let all = KPISeries.series(
            rows: rows, kpis: KPISeries.kpiNames, controls: [[0], [0]], disturbances: [[0], [0]])
        #expect(all.y[0] == [10, 0.3, 5, 100] && all.y[1] == nil)
        let some = KPISeries.series(
            rows: rows, kpis: ["daily_active_users", "latency_p95_ms"], controls: [[0], [0]], disturbances: [[0], [0]])
        #expect(some.y[1] == [12, 90])
    }

    /// Means 2 and 10; sample standard deviations √2 and (no spread) 1.
    @Test func standardizationUsesObservedDays() {
        let series = StateSpaceSeries(y: [[1, 10], [3, 10], nil], u: [[], [], []], d: [[], [], []])
        let s = Standardization(series, width: 2)
        #expect(s.offsets == [2, 10])
        #expect(abs(s.scales[0] - 2.0.squareRoot()) < 1e-15 && s.scales[1] == 1)
        #expect(s.apply(series).y[1]?[0] == 1 / 2.0.squareRoot())
        #expect(s.restore([1, 3]) == [2 + 2.0.squareRoot(), 13])
    }
}

import Testing

@testable import BTEAPI

/// The dashboard's figures: a Prometheus histogram read off the projectors' metrics, and each
/// signal in its unit.
struct DashboardFiguresTests {
    /// Two projectors' series of `bte_projector_freshness_seconds`, summed per bound:
    /// ≤ 0.1 s 60 + 40 = 100, ≤ 0.25 s 110 + 80 = 190, ≤ 0.5 s 120 + 80 = 200, +Inf 200.
    static let exposition = """
        # TYPE bte_projector_freshness_seconds histogram
        bte_projector_freshness_seconds_bucket{le="0.1",instance="a"} 60
        bte_projector_freshness_seconds_bucket{le="0.25",instance="a"} 110
        bte_projector_freshness_seconds_bucket{le="0.5",instance="a"} 120
        bte_projector_freshness_seconds_bucket{le="+Inf",instance="a"} 120
        bte_projector_freshness_seconds_bucket{instance="b",le="0.1"} 40
        bte_projector_freshness_seconds_bucket{instance="b",le="0.25"} 80
        bte_projector_freshness_seconds_bucket{instance="b",le="0.5"} 80
        bte_projector_freshness_seconds_bucket{instance="b",le="+Inf"} 80
        bte_projector_freshness_seconds_sum 31.5
        bte_projector_freshness_seconds_count 200
        bte_projector_batch_duration_seconds_bucket{le="0.1"} 7
        """

    @Test func theP99OfSummedSeriesIsInterpolatedWithinItsBucket() {
        var histogram = PrometheusHistogram()
        histogram.add(exposition: Self.exposition, name: "bte_projector_freshness_seconds")
        #expect(histogram.buckets == [0.1: 100, 0.25: 190, 0.5: 200, .infinity: 200])
        #expect(histogram.count == 200)
        // Rank 0.99 × 200 = 198 lies in (0.25, 0.5], which holds 190 → 200:
        // 0.25 + 0.25 × (198 − 190) / 10 = 0.45.
        #expect(abs((histogram.quantile(0.99) ?? 0) - 0.45) < 1e-12)
        // Rank 100 is exactly the first bucket's count: its bound.
        #expect(histogram.quantile(0.5) == 0.1)
        #expect(PrometheusHistogram().quantile(0.99) == nil)
    }

    @Test func aPeriodIsTheDifferenceAndARestartCountsAsNew() {
        let earlier = PrometheusHistogram(buckets: [0.1: 100, 0.25: 190, 0.5: 200, .infinity: 200])
        let later = PrometheusHistogram(buckets: [0.1: 100, 0.25: 190, 0.5: 210, .infinity: 212])
        // 12 events since: 10 in (0.25, 0.5], 2 beyond 0.5; rank 11.88 falls in +Inf → 0.5.
        #expect(later.since(earlier).buckets == [0.1: 0, 0.25: 0, 0.5: 10, .infinity: 12])
        #expect(later.since(earlier).quantile(0.99) == 0.5)
        // A projector restarted: its counts went down, so they are all new.
        let restarted = PrometheusHistogram(buckets: [0.1: 3, 0.25: 3, 0.5: 3, .infinity: 3])
        #expect(restarted.since(earlier).count == 3)
    }

    @Test func malformedLinesAreSkipped() {
        var histogram = PrometheusHistogram()
        histogram.add(
            exposition: """
                bte_projector_freshness_seconds_bucket{le="x"} 5
                bte_projector_freshness_seconds_bucket{le="0.1"} -5
                bte_projector_freshness_seconds_bucket{le="0.1"} NaN
                bte_projector_freshness_seconds_bucket{le="0.1" 5
                bte_projector_freshness_seconds_bucket{le="0.1"} 5
                """, name: "bte_projector_freshness_seconds")
        #expect(histogram.buckets == [0.1: 5])
    }

    @Test func eachSignalIsShownInItsUnit() {
        func shown(_ type: String, _ value: String, _ label: String = "", _ counts: (Int, Int)? = nil) -> String {
            SignalDisplay.text(type: type, value: value, label: label, counts: counts.map { ($0.0, $0.1) })
        }
        #expect(shown("decision_latency", "7200") == "2.0 h")
        #expect(shown("execution_consistency", "5400") == "1.5 h")
        #expect(shown("idle_decay", "0.5") == "0.5 days")
        // 5 ÷ 2 = 2.5: the counts agree with the value and are shown; 4 ÷ 2 = 2 do not.
        #expect(shown("momentum", "2.5", "", (5, 2)) == "2.50× (5 actions in the last 7 days, 2 the 7 days before)")
        #expect(shown("momentum", "2.5", "", (4, 2)) == "2.50×")
        #expect(shown("momentum", "2.5") == "2.50×")
        #expect(shown("nba_adoption_rate", "0.5") == "50.0%")
        #expect(shown("follow_through_rate", "0.125") == "12.5%")
        #expect(shown("drop_off_point", "3", "pricing") == "3 abandoned at pricing")
        #expect(shown("hesitation_index", "0.75") == "0.75× the expected page views")
        #expect(shown("missed_opportunity_count", "1") == "1 missed")
        #expect(shown("execution_gap", "90") == "90.00")
        #expect(shown("unknown", "3") == "3")
    }

    @Test func freshnessSaysWhatItCovers() {
        #expect(SignalDisplay.freshness(nil, configured: false) == "– (bte serve --projector-metrics-url)")
        let first = ProjectorFreshness.Reading(p99: 0.45, published: 200, window: nil, answered: 1, asked: 1)
        #expect(
            SignalDisplay.freshness(first, configured: true)
                == "p99 0.45 s (200 events since the projectors started; 1 of 1 projector)")
        let quiet = ProjectorFreshness.Reading(p99: nil, published: 0, window: 30, answered: 2, asked: 3)
        #expect(
            SignalDisplay.freshness(quiet, configured: true)
                == "no output published in the last 30 s (2 of 3 projectors)")
    }
}

/// One workspace day of KPIs as read from the logs; nil where the day has no value (no
/// durations for the latency, no matured cohort for the retention).
public struct DailyKPIs: Sendable, Equatable {
    /// Days since 1970-01-01 (UTC).
    public var day: Int
    public var dailyActiveUsers: Double
    public var retentionD7: Double?
    public var revenueUSD: Double
    public var latencyP95Ms: Double?

    public init(day: Int, dailyActiveUsers: Double, retentionD7: Double?, revenueUSD: Double, latencyP95Ms: Double?) {
        self.day = day
        self.dailyActiveUsers = dailyActiveUsers
        self.retentionD7 = retentionD7
        self.revenueUSD = revenueUSD
        self.latencyP95Ms = latencyP95Ms
    }

    public func value(_ kpi: String) -> Double? {
        switch kpi {
        case "daily_active_users": dailyActiveUsers
        case "retention_d7": retentionD7
        case "revenue_usd": revenueUSD
        case "latency_p95_ms": latencyP95Ms
        default: nil
        }
    }
}

/// A `control.changed`: the controls it sets, from its time on.
public struct ControlChange: Sendable, Equatable {
    public var microseconds: Int64
    public var values: [String: Double]
    public init(microseconds: Int64, values: [String: Double]) {
        self.microseconds = microseconds
        self.values = values
    }
}

/// An outage from `incident.started` to `incident.resolved` (open while unresolved).
public struct Incident: Sendable, Equatable {
    public var start: Int64
    public var end: Int64?
    public init(start: Int64, end: Int64?) {
        self.start = start
        self.end = end
    }
}

/// Turns the logs' daily figures into the model's series: y (the chosen KPIs), u (controls in
/// effect at the end of each day) and d (calendar and outages).
public enum KPISeries {
    public static let kpiNames = ["daily_active_users", "retention_d7", "revenue_usd", "latency_p95_ms"]

    /// The values a KPI can take: retention is a share, the others are counts, sums of
    /// non-negative amounts or durations.
    public static func possibleRange(of kpi: String) -> ClosedRange<Double> {
        kpi == "retention_d7" ? 0...1 : 0...Double.greatestFiniteMagnitude
    }
    public static let controlNames = ["rollout_pct", "promo_voltage", "price_index", "copy_score"]
    /// Before the first change: no rollout, no promotion, the base price, a neutral copy score.
    public static let controlDefaults: [String: Double] = [
        "rollout_pct": 0, "promo_voltage": 0, "price_index": 1, "copy_score": 0,
    ]
    public static let disturbanceNames = ["day_of_week", "monthly_cycle", "outage_flag"]
    static let dayMicroseconds: Int64 = 86_400_000_000

    /// Each day's controls: the last value set at or before the day's end, else the default.
    public static func controls(days: [Int], names: [String], changes: [ControlChange]) -> [[Double]] {
        let ordered = changes.sorted { $0.microseconds < $1.microseconds }
        var current = controlDefaults
        var next = 0
        return days.map { day in
            let end = Int64(day + 1) * dayMicroseconds
            while next < ordered.count, ordered[next].microseconds < end {
                for (name, value) in ordered[next].values { current[name] = value }
                next += 1
            }
            return names.map { current[$0] ?? 0 }
        }
    }

    /// day_of_week 0 (Monday) … 6 (Sunday); monthly_cycle 0 on the 1st … 1 on the month's last
    /// day; outage_flag 1 when an incident overlaps the day.
    public static func disturbances(days: [Int], names: [String], incidents: [Incident]) -> [[Double]] {
        days.map { day in
            names.map { name in
                switch name {
                case "day_of_week": return Double(dayOfWeek(day))
                case "monthly_cycle": return monthlyCycle(day)
                case "outage_flag":
                    let start = Int64(day) * dayMicroseconds
                    let end = start + dayMicroseconds
                    return incidents.contains { $0.start < end && ($0.end ?? .max) > start } ? 1 : 0
                default: return 0
                }
            }
        }
    }

    /// 1970-01-01 was a Thursday (3 with Monday 0).
    public static func dayOfWeek(_ day: Int) -> Int { ((day % 7) + 7 + 3) % 7 }

    public static func monthlyCycle(_ day: Int) -> Double {
        let (year, month, dayOfMonth) = civil(day)
        let length = daysInMonth(year, month)
        return Double(dayOfMonth - 1) / Double(length - 1)
    }

    /// (year, month, day) of a day count since 1970-01-01, proleptic Gregorian.
    public static func civil(_ days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    static func daysInMonth(_ year: Int, _ month: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// The model's series from the daily rows: a day enters y only when every chosen KPI has a
    /// value (otherwise it is predicted through, not used to update).
    public static func series(
        rows: [DailyKPIs], kpis: [String], controls: [[Double]], disturbances: [[Double]]
    ) -> StateSpaceSeries {
        let y = rows.map { row -> [Double]? in
            let values = kpis.compactMap { row.value($0) }
            return values.count == kpis.count ? values : nil
        }
        return StateSpaceSeries(y: y, u: controls, d: disturbances)
    }
}

/// Each KPI centred on its mean and scaled by its standard deviation over the observed days, so
/// one ridge and one set of starting values suit users in thousands and retention in fractions.
public struct Standardization: Sendable, Equatable {
    public var offsets: [Double]
    public var scales: [Double]

    public init(offsets: [Double], scales: [Double]) {
        self.offsets = offsets
        self.scales = scales
    }

    public init(_ series: StateSpaceSeries, width: Int) {
        let observed = series.y.compactMap { $0 }
        offsets = (0..<width).map { k in observed.reduce(0) { $0 + $1[k] } / Double(max(observed.count, 1)) }
        let means = offsets
        scales = (0..<width).map { k in
            let variance =
                observed.reduce(0) { $0 + ($1[k] - means[k]) * ($1[k] - means[k]) } / Double(max(observed.count - 1, 1))
            return variance > 0 ? variance.squareRoot() : 1
        }
    }

    public func apply(_ series: StateSpaceSeries) -> StateSpaceSeries {
        var out = series
        out.y = series.y.map { $0.map { y in y.indices.map { (y[$0] - offsets[$0]) / scales[$0] } } }
        return out
    }

    public func restore(_ y: [Double]) -> [Double] { y.indices.map { offsets[$0] + scales[$0] * y[$0] } }
}

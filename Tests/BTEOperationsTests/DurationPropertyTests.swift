import BTEDomain
import BTEModelRuns
import BTEOperations
import Foundation
import PropertyBased
import Testing

/// Durations and `--since` come from flags and query strings: no text may trap, and what
/// parses means what it says.
struct DurationPropertyTests {
    static let units: [(suffix: String, seconds: Int64)] = [
        ("s", 1), ("m", 60), ("h", 3_600), ("d", 86_400), ("w", 604_800),
    ]
    static let isoUnits: [(text: String, seconds: Int64)] = [
        ("PnW", 604_800), ("PnD", 86_400), ("PTnH", 3_600), ("PTnM", 60), ("PTnS", 1),
    ]

    @Test func hugeDurationsAreRefusedNotTrapped() throws {
        // 9,999,999,999,999 s × 1,000,000 overflows Int64 (max ≈ 9.22e18); so does
        // 99,999,999,999,999,999 weeks × 604,800 s, and a sum of two terms that each fit.
        for text in [
            "9999999999999s", "P99999999999999999W", "9223372036854775807s", "15250284452471w",
            "P15250284452471W", "P1DT9223372036854775807S", "PT9223372036854775807S",
            "P9223372036854775807W", "99999999999999999999d",
        ] {
            #expect(ReplayTarget.parseDuration(text) == nil, "\(text)")
            #expect(throws: OperationsError.self, "\(text)") { try ReplayTarget.duration(text) }
            #expect(throws: OperationsError.self, "\(text)") { try parseSince(text, nowMilliseconds: 0) }
        }
        // The longest accepted: Int64.max µs = 9,223,372,036,854 s (and 775,807 µs more).
        #expect(ReplayTarget.parseDuration("9223372036854s") == 9_223_372_036_854)
        #expect(ReplayTarget.parseDuration("9223372036855s") == nil)
        // 152,502,844 weeks × 604,800 = 92,233,720,051,200 s is too long; 15,250 weeks
        // (9,223,200,000 s) fit.
        #expect(ReplayTarget.parseDuration("152502844w") == nil)
        #expect(ReplayTarget.parseDuration("15250w") == Int64(9_223_200_000))
    }

    @Test func sinceFarBeforeNowDoesNotTrap() throws {
        // now = 1,000 ms; 9,223,372,036,854 s back: 1,000 − 9,223,372,036,854,000 ms, in µs
        // (1,000 − 9,223,372,036,854,000) × 1,000 = −9,223,372,036,853,000,000.
        let since = try parseSince("9223372036854s", nowMilliseconds: 1_000)
        #expect(since.microseconds == -9_223_372_036_853_000_000)
        // Now itself near the bottom of Int64: the subtraction would overflow.
        #expect(throws: OperationsError.self) { try parseSince("1s", nowMilliseconds: Int64.min) }
        #expect(throws: OperationsError.self) { try parseSince("1s", nowMilliseconds: Int64.min / 1000) }
        // And an instant a duration reaches before the epoch is the epoch: Kafka reads negative
        // times as "latest" (−1) and "earliest" (−2).
        #expect(ReplayTarget.duration(milliseconds: Int64.max).instant(nowMilliseconds: Int64.min) == 0)
        #expect(ReplayTarget.duration(milliseconds: 2_000).instant(nowMilliseconds: 1_000) == 0)
        #expect(ReplayTarget.datetime(milliseconds: -1).instant(nowMilliseconds: 0) == 0)
    }

    @Test func sweepIntervals() throws {
        #expect(try sweepInterval("15m") == 900_000)
        #expect(try sweepInterval("1d") == 86_400_000)
        // A year of 366 days: 31,622,400,000 ms; a day more is refused.
        #expect(try sweepInterval("366d") == 31_622_400_000)
        for bad in ["367d", "59s", "0m", "", "9999999999999s", "P99999999999999999W", "-1h"] {
            #expect(throws: OperationsError.self, "\(bad)") { try sweepInterval(bad) }
        }
    }

    @Test func anyTextParsesOrNot() async {
        await propertyCheck(count: 2_000, input: Gen.ascii.string(of: 0...24)) { text in
            if let seconds = ReplayTarget.parseDuration(text) {
                #expect(seconds >= 0 && seconds <= ReplayTarget.maxDurationSeconds, "\(text)")
            }
            _ = try? ReplayTarget.duration(text)
            _ = try? parseSince(text, nowMilliseconds: 1_763_337_600_000)
            _ = try? sweepInterval(text)
        }
    }

    @Test func digitsWithAnyUnitRoundTrip() async {
        let digits = Gen.character(in: "0"..."9").string(of: 1...22)
        let unit = Gen.int(in: 0...(Self.units.count - 1))
        await propertyCheck(count: 2_000, input: digits, unit) { digits, unit in
            let (suffix, seconds) = Self.units[unit]
            let parsed = ReplayTarget.parseDuration(digits + suffix)
            guard let count = Int64(digits) else {
                #expect(parsed == nil, "\(digits)\(suffix)")
                return
            }
            let (total, overflow) = count.multipliedReportingOverflow(by: seconds)
            let fits = !overflow && total <= ReplayTarget.maxDurationSeconds
            #expect(parsed == (fits ? total : nil), "\(digits)\(suffix)")
        }
    }

    @Test func isoDigitsWithAnyUnitRoundTrip() async {
        let digits = Gen.character(in: "0"..."9").string(of: 1...22)
        let unit = Gen.int(in: 0...(Self.isoUnits.count - 1))
        await propertyCheck(count: 2_000, input: digits, unit) { digits, unit in
            let (form, seconds) = Self.isoUnits[unit]
            let text = form.replacingOccurrences(of: "n", with: digits)
            let parsed = ReplayTarget.parseDuration(text)
            guard let count = Int64(digits) else {
                #expect(parsed == nil, "\(text)")
                return
            }
            let (total, overflow) = count.multipliedReportingOverflow(by: seconds)
            let fits = !overflow && total <= ReplayTarget.maxDurationSeconds
            #expect(parsed == (fits ? total : nil), "\(text)")
        }
    }

    @Test func isoSumsOfTwoPartsRoundTrip() async {
        let count = Gen.int64(in: 0...Int64.max)
        await propertyCheck(count: 1_000, input: count, count) { days, hours in
            let parsed = ReplayTarget.parseDuration("P\(days)DT\(hours)H")
            let (a, o1) = days.multipliedReportingOverflow(by: 86_400)
            let (b, o2) = hours.multipliedReportingOverflow(by: 3_600)
            let (sum, o3) = a.addingReportingOverflow(b)
            let fits = !o1 && !o2 && !o3 && sum <= ReplayTarget.maxDurationSeconds
            #expect(parsed == (fits ? sum : nil), "P\(days)DT\(hours)H")
        }
    }

    @Test func modelDaysRoundTrip() async {
        let digits = Gen.character(in: "0"..."9").string(of: 1...22)
        let unit = Gen.element(of: ["", "d", "w", "x"])
        await propertyCheck(count: 2_000, input: digits, unit) { digits, unit in
            let parsed = ModelRequests.days(digits + (unit ?? ""))
            guard let n = Int(digits), unit != "x" else {
                #expect(parsed == nil, "\(digits)\(unit ?? "")")
                return
            }
            let (weeks, overflow) = n.multipliedReportingOverflow(by: 7)
            #expect(parsed == (unit == "w" ? (overflow ? nil : weeks) : n), "\(digits)\(unit ?? "")")
        }
        await propertyCheck(count: 1_000, input: Gen.ascii.string(of: 0...24)) { text in
            _ = ModelRequests.days(text)
        }
    }
}

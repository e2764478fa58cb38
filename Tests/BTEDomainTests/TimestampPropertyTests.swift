import BTEDomain
import Foundation
import PropertyBased
import Testing

/// Timestamps come from events, flags and query strings: parsing and formatting are total.
struct TimestampPropertyTests {
    @Test func extremeInstantsFormatWithoutTrapping() {
        // Int64.max µs = 9,223,372,036,854 s + 775,807 µs = 106,751,991 days + 14,454 s
        // (04:00:54): day 106,751,991 after 1970-01-01 is 294247-01-10.
        #expect(Timestamp(microseconds: .max).rfc3339 == "294247-01-10T04:00:54.775807Z")
        // Int64.min µs = −9,223,372,036,854 s − 775,808 µs: floored, −9,223,372,036,855 s + 224,192 µs
        // = −106,751,992 days + 71,945 s (19:59:05): 290309 BC, i.e. year −290308, 12-21.
        #expect(Timestamp(microseconds: .min).rfc3339 == "-290308-12-21T19:59:05.224192Z")
        #expect(Timestamp(microseconds: -1).rfc3339 == "1969-12-31T23:59:59.999999Z")
        // The last month: its end would be past Int64.max µs, so it stops there.
        let last = Timestamp(microseconds: .max).monthBounds
        #expect(last.start.rfc3339 == "294247-01-01T00:00:00.000000Z")
        #expect(last.end == Timestamp(microseconds: .max))
        #expect(Timestamp(microseconds: .min).monthBounds.start == Timestamp(microseconds: .min))
        #expect(Timestamp(microseconds: .min).monthKey == -290308 * 100 + 12)
    }

    @Test func everyInstantFormatsAndReadsBack() async {
        await propertyCheck(count: 2_000, input: Gen.int64(in: Int64.min...Int64.max)) { micros in
            let t = Timestamp(microseconds: micros)
            let text = t.rfc3339
            let bounds = t.monthBounds
            #expect(bounds.start <= t && t <= bounds.end)
            // Years 0 to 9999 have four digits, which is what RFC 3339 can say.
            if text.utf8.count == 27 {
                #expect(Timestamp(rfc3339: text) == t, "\(text)")
            }
        }
    }

    @Test func fourDigitYearsFormatInTwentySevenBytesAndReadBack() async {
        // 0000-01-01: 719,528 days before 1970 × 86,400 s. 9999-12-31T23:59:59.999999Z: the last
        // microsecond RFC 3339 can write.
        let first: Int64 = -62_167_219_200_000_000
        let last: Int64 = 253_402_300_799_999_999
        #expect(Timestamp(microseconds: first).rfc3339 == "0000-01-01T00:00:00.000000Z")
        #expect(Timestamp(microseconds: last).rfc3339 == "9999-12-31T23:59:59.999999Z")
        #expect(Timestamp(microseconds: 0).rfc3339 == "1970-01-01T00:00:00.000000Z")
        // 1,700,000,000 s = 19,675 days + 80,000 s (22:13:20): 2023-11-14.
        #expect(Timestamp(microseconds: 1_700_000_000_000_042).rfc3339 == "2023-11-14T22:13:20.000042Z")
        #expect(Timestamp(microseconds: first - 1).rfc3339 == "-0001-12-31T23:59:59.999999Z")
        #expect(Timestamp(microseconds: last + 1).rfc3339 == "10000-01-01T00:00:00.000000Z")
        await propertyCheck(count: 2_000, input: Gen.int64(in: first...last)) { micros in
            let text = Timestamp(microseconds: micros).rfc3339
            #expect(text.utf8.count == 27, "\(text)")
            #expect(Timestamp(rfc3339: text) == Timestamp(microseconds: micros), "\(text)")
        }
    }

    @Test func anyTextParsesOrNot() async {
        let characters = Gen<Character?>.element(of: Array("0123456789-:.TZtz+ 9Zx")).map { $0 ?? "0" }
        await propertyCheck(count: 2_000, input: characters.string(of: 0...40)) { text in
            if let t = Timestamp(rfc3339: text) { _ = t.rfc3339 }
        }
        await propertyCheck(count: 1_000, input: Gen.ascii.string(of: 0...40)) { text in
            _ = Timestamp(rfc3339: text)
        }
    }

    @Test func componentsRoundTrip() async {
        let date = Gen.int(in: 0...9999)
        let clock = Gen.int(in: 0...86_399)
        let fraction = Gen.character(in: "0"..."9").string(of: 1...30)
        await propertyCheck(count: 2_000, input: date, clock, fraction) { year, seconds, fraction in
            func pad(_ n: Int, _ width: Int) -> String {
                String(repeating: "0", count: max(0, width - String(n).count)) + String(n)
            }
            let text =
                "\(pad(year, 4))-03-01T\(pad(seconds / 3600, 2)):\(pad(seconds / 60 % 60, 2)):\(pad(seconds % 60, 2))"
                + ".\(fraction)Z"
            // Days from 1970-01-01 to March 1st of `year`: from 2000-03-01 (day 10,957 + 31 + 29
            // = 11,017), whole 400-year eras of 146,097 days, then 365 a year plus the February
            // 29ths passed (of years 1…y into the era).
            let yearsSince2000 = year - 2000
            let era = yearsSince2000 >= 0 ? yearsSince2000 / 400 : (yearsSince2000 - 399) / 400
            let y = yearsSince2000 - era * 400
            let days = 11_017 + era * 146_097 + y * 365 + y / 4 - y / 100 + y / 400
            var micros = 0
            for digit in fraction.prefix(6) { micros = micros * 10 + Int(digit.asciiValue ?? 48) - 48 }
            for _ in min(fraction.count, 6)..<6 { micros *= 10 }
            let expected = (Int64(days) * 86_400 + Int64(seconds)) * 1_000_000 + Int64(micros)
            #expect(Timestamp(rfc3339: text)?.microseconds == expected, "\(text)")
        }
    }
}

/// An instant in UTC with microsecond precision, as PostgreSQL's `timestamptz` stores it.
public struct Timestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Microseconds since 1970-01-01T00:00:00Z.
    public let microseconds: Int64

    public init(microseconds: Int64) { self.microseconds = microseconds }

    /// The earliest and latest instants accepted in events: [1970-01-01, 2100-01-01).
    public static let microsecondsPerDay: Int64 = 86_400_000_000

    public static let acceptedRange = Timestamp(microseconds: 0)..<Timestamp(microseconds: 4_102_444_800_000_000)

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.microseconds < rhs.microseconds }

    public var seconds: Double { Double(microseconds) / 1_000_000 }

    /// Parses RFC 3339 (`2025-11-17T10:30:00.123Z`, `…+02:00`). A zone is required; digits
    /// beyond microseconds are truncated.
    public init?(rfc3339 text: String) {
        var utf8 = Array(text.utf8)
        guard utf8.count >= 20 else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for i in range {
                let byte = utf8[i]
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        if utf8[10] == UInt8(ascii: "t") || utf8[10] == UInt8(ascii: " ") { utf8[10] = UInt8(ascii: "T") }
        guard let year = number(0..<4), utf8[4] == UInt8(ascii: "-"), let month = number(5..<7),
            utf8[7] == UInt8(ascii: "-"),
            let day = number(8..<10), utf8[10] == UInt8(ascii: "T"), let hour = number(11..<13),
            utf8[13] == UInt8(ascii: ":"),
            let minute = number(14..<16), utf8[16] == UInt8(ascii: ":"), let second = number(17..<19)
        else { return nil }
        guard (1...12).contains(month), day >= 1, day <= Timestamp.daysIn(month: month, year: year),
            hour <= 23, minute <= 59, second <= 59
        else { return nil }
        var index = 19
        var micros = 0
        if index < utf8.count, utf8[index] == UInt8(ascii: ".") {
            index += 1
            var digits = 0
            while index < utf8.count, utf8[index] >= 48, utf8[index] <= 57 {
                if digits < 6 { micros = micros * 10 + Int(utf8[index] - 48) }
                digits += 1
                index += 1
            }
            guard digits > 0 else { return nil }
            for _ in min(digits, 6)..<6 { micros *= 10 }
        }
        guard index < utf8.count else { return nil }
        var offsetSeconds = 0
        switch utf8[index] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            index += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let sign = utf8[index] == UInt8(ascii: "-") ? -1 : 1
            guard index + 6 == utf8.count, let oh = number(index + 1..<index + 3), utf8[index + 3] == UInt8(ascii: ":"),
                let om = number(index + 4..<index + 6), oh <= 23, om <= 59
            else { return nil }
            offsetSeconds = sign * (oh * 3600 + om * 60)
            index += 6
        default:
            return nil
        }
        guard index == utf8.count else { return nil }
        let days = Timestamp.daysFromCivil(year: year, month: month, day: day)
        let secondsOfDay = hour * 3600 + minute * 60 + second
        let total = Int64(days) * 86_400 + Int64(secondsOfDay - offsetSeconds)
        self.microseconds = total * 1_000_000 + Int64(micros)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date.
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civilFromDays(_ z0: Int) -> (year: Int, month: Int, day: Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// Floored: every Int64 is a valid instant (a `--since` far back or a stored value), so
    /// the split must not overflow where `x - 999_999` would.
    private var parts: (year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, micros: Int) {
        let (totalSeconds, micros) = floorDivision(microseconds, 1_000_000)
        let (days, secondsOfDay) = floorDivision(totalSeconds, 86_400)
        let (y, m, d) = Timestamp.civilFromDays(Int(days))
        let s = Int(secondsOfDay)
        return (y, m, d, s / 3600, s / 60 % 60, s % 60, Int(micros))
    }

    /// The first instant of this timestamp's UTC month, and of the next month; within the
    /// representable range (the first and last months of it are cut).
    public var monthBounds: (start: Timestamp, end: Timestamp) {
        let p = parts
        let start = Timestamp.daysFromCivil(year: p.year, month: p.month, day: 1)
        let end =
            p.month == 12
            ? Timestamp.daysFromCivil(year: p.year + 1, month: 1, day: 1)
            : Timestamp.daysFromCivil(year: p.year, month: p.month + 1, day: 1)
        func midnight(_ days: Int) -> Timestamp {
            let (micros, overflow) = Int64(days).multipliedReportingOverflow(by: Timestamp.microsecondsPerDay)
            return Timestamp(microseconds: overflow ? (days < 0 ? .min : .max) : micros)
        }
        return (midnight(start), midnight(end))
    }

    /// `YYYYMM` of the UTC month, e.g. `202511`.
    public var monthKey: Int {
        let p = parts
        return p.year * 100 + p.month
    }

    /// RFC 3339 UTC with six fractional digits: `2025-11-17T10:30:00.000000Z`.
    public var rfc3339: String {
        let p = parts
        // Years 0…9999, every output's: the digits written straight into one buffer.
        if (0...9999).contains(p.year) {
            var out: [UInt8] = []
            out.reserveCapacity(27)
            func digits(_ value: Int, _ width: Int) {
                var divisor = 1
                for _ in 1..<width { divisor *= 10 }
                var rest = value
                while divisor > 0 {
                    out.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest / divisor))
                    rest %= divisor
                    divisor /= 10
                }
            }
            digits(p.year, 4)
            out.append(UInt8(ascii: "-"))
            digits(p.month, 2)
            out.append(UInt8(ascii: "-"))
            digits(p.day, 2)
            out.append(UInt8(ascii: "T"))
            digits(p.hour, 2)
            out.append(UInt8(ascii: ":"))
            digits(p.minute, 2)
            out.append(UInt8(ascii: ":"))
            digits(p.second, 2)
            out.append(UInt8(ascii: "."))
            digits(p.micros, 6)
            out.append(UInt8(ascii: "Z"))
            return String(decoding: out, as: UTF8.self)
        }
        let date = "\(pad(p.year, 4))-\(pad(p.month, 2))-\(pad(p.day, 2))"
        let time = "\(pad(p.hour, 2)):\(pad(p.minute, 2)):\(pad(p.second, 2)).\(pad(p.micros, 6))"
        return "\(date)T\(time)Z"
    }

    public var description: String { rfc3339 }
}

/// Quotient rounded down and a remainder in 0..<divisor (divisor > 1, so nothing overflows).
private func floorDivision(_ value: Int64, _ divisor: Int64) -> (quotient: Int64, remainder: Int64) {
    let (quotient, remainder) = value.quotientAndRemainder(dividingBy: divisor)
    return remainder < 0 ? (quotient - 1, remainder + divisor) : (quotient, remainder)
}

/// Zero-padded to `width` digits, the sign (of years before 1 BC) in front.
private func pad(_ value: Int, _ width: Int) -> String {
    let text = String(value.magnitude)
    let digits = text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    return value < 0 ? "-" + digits : digits
}

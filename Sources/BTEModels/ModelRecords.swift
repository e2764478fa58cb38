import BTEDomain

/// A fitted state-space run as stored in `bte.estimate_runs.params`: the parameters (on
/// standardized KPIs), how to restore KPI units, what the series were, and the predicted state
/// for the day after the last fitted day, which simulations and forecasts start from.
public struct FittedStateSpace: Sendable, Equatable {
    public var parameters: StateSpaceParameters
    public var standardization: Standardization
    public var kpis: [String]
    public var controls: [String]
    public var disturbances: [String]
    /// Days since 1970-01-01: the last fitted day.
    public var lastDay: Int
    public var lastControls: [Double]
    public var nextMean: [Double]
    public var nextCovariance: Matrix
    /// Each control's lowest and highest value over the fitted days: what the model has seen
    /// the controls do (nil in runs recorded before it was kept).
    public var controlRangesSeen: [ClosedRange<Double>]?

    public init(
        parameters: StateSpaceParameters, standardization: Standardization, kpis: [String], controls: [String],
        disturbances: [String], lastDay: Int, lastControls: [Double], nextMean: [Double], nextCovariance: Matrix
    ) {
        self.parameters = parameters
        self.standardization = standardization
        self.kpis = kpis
        self.controls = controls
        self.disturbances = disturbances
        self.lastDay = lastDay
        self.lastControls = lastControls
        self.nextMean = nextMean
        self.nextCovariance = nextCovariance
    }

    /// The days after the last fitted one, and their disturbances (no outage is foreseen).
    public func calendar(horizon: Int) -> (days: [Int], disturbances: [[Double]]) {
        let days = (0..<horizon).map { lastDay + 1 + $0 }
        return (days, KPISeries.disturbances(days: days, names: disturbances, incidents: []))
    }

    public var json: JSONValue {
        let p = parameters
        return .object(
            [
                ("A", ModelJSON.matrix(p.a)), ("B", ModelJSON.matrix(p.b)), ("C", ModelJSON.matrix(p.c)),
                ("D", ModelJSON.matrix(p.d)), ("E", ModelJSON.matrix(p.e)), ("Q", ModelJSON.matrix(p.q)),
                ("R", ModelJSON.matrix(p.r)), ("m0", ModelJSON.numbers(p.initialMean)),
                ("P0", ModelJSON.matrix(p.initialCovariance)),
                ("kpis", .array(kpis.map { .string($0) })), ("controls", .array(controls.map { .string($0) })),
                ("disturbances", .array(disturbances.map { .string($0) })),
                ("kpi_offsets", ModelJSON.numbers(standardization.offsets)),
                ("kpi_scales", ModelJSON.numbers(standardization.scales)),
                ("last_day", .string(ModelJSON.date(lastDay))), ("last_controls", ModelJSON.numbers(lastControls)),
                ("next_state_mean", ModelJSON.numbers(nextMean)),
                ("next_state_covariance", ModelJSON.matrix(nextCovariance)),
            ]
            .map { (key: $0.0, value: $0.1) }
                + (controlRangesSeen.map { ranges in
                    [
                        (
                            key: "control_ranges_seen",
                            value: .array(ranges.map { ModelJSON.numbers([$0.lowerBound, $0.upperBound]) })
                        )
                    ]
                } ?? []))
    }

    public init(json: JSONValue) throws(ModelError) {
        func matrix(_ key: String) throws(ModelError) -> Matrix { try ModelJSON.matrix(json[key], key) }
        func numbers(_ key: String) throws(ModelError) -> [Double] { try ModelJSON.numbers(json[key], key) }
        func strings(_ key: String) throws(ModelError) -> [String] {
            guard case .array(let items)? = json[key] else { throw ModelError(.invalidInput, "run params lack \(key)") }
            return items.compactMap { if case .string(let s) = $0 { s } else { nil } }
        }
        guard case .string(let last)? = json["last_day"], let lastDay = ModelJSON.day(last) else {
            throw ModelError(.invalidInput, "run params lack last_day")
        }
        let parameters = StateSpaceParameters(
            a: try matrix("A"), b: try matrix("B"), c: try matrix("C"), d: try matrix("D"), e: try matrix("E"),
            q: try matrix("Q"), r: try matrix("R"), initialMean: try numbers("m0"), initialCovariance: try matrix("P0"))
        self.init(
            parameters: parameters,
            standardization: Standardization(offsets: try numbers("kpi_offsets"), scales: try numbers("kpi_scales")),
            kpis: try strings("kpis"), controls: try strings("controls"), disturbances: try strings("disturbances"),
            lastDay: lastDay, lastControls: try numbers("last_controls"), nextMean: try numbers("next_state_mean"),
            nextCovariance: try matrix("next_state_covariance"))
        if case .array(let rows)? = json["control_ranges_seen"] {
            var ranges: [ClosedRange<Double>] = []
            for row in rows {
                let bounds = try ModelJSON.numbers(row, "control_ranges_seen")
                guard bounds.count == 2, bounds[0] <= bounds[1] else {
                    throw ModelError(.invalidInput, "control_ranges_seen holds a range that is not [low, high]")
                }
                ranges.append(bounds[0]...bounds[1])
            }
            guard ranges.count == controls.count else {
                throw ModelError(.invalidInput, "control_ranges_seen does not match the controls")
            }
            controlRangesSeen = ranges
        }
    }
}

/// JSON for the models' records: finite numbers as JSON numbers, anything else null.
public enum ModelJSON {
    public static func number(_ x: Double) -> JSONValue { x.isFinite ? .number("\(x)") : .null }
    public static func numbers(_ xs: [Double]) -> JSONValue { .array(xs.map(number)) }
    public static func matrix(_ m: Matrix) -> JSONValue { .array(m.rowArrays.map(numbers)) }
    public static func object(_ pairs: [(String, JSONValue)]) -> JSONValue {
        .object(pairs.map { (key: $0.0, value: $0.1) })
    }

    static func numbers(_ value: JSONValue?, _ key: String) throws(ModelError) -> [Double] {
        guard case .array(let items)? = value else { throw ModelError(.invalidInput, "run params lack \(key)") }
        var out: [Double] = []
        for item in items {
            guard case .number(let text) = item, let x = Double(text) else {
                throw ModelError(.invalidInput, "\(key) holds a value that is not a number")
            }
            out.append(x)
        }
        return out
    }

    static func matrix(_ value: JSONValue?, _ key: String) throws(ModelError) -> Matrix {
        guard case .array(let rows)? = value else { throw ModelError(.invalidInput, "run params lack \(key)") }
        var values: [[Double]] = []
        for row in rows { values.append(try numbers(row, key)) }
        guard let width = values.first?.count, values.allSatisfy({ $0.count == width }) else {
            throw ModelError(.invalidInput, "\(key) is not a matrix")
        }
        return Matrix(values)
    }

    /// YYYY-MM-DD of a day count since 1970-01-01.
    public static func date(_ day: Int) -> String {
        let (y, m, d) = KPISeries.civil(day)
        func padded(_ n: Int, _ width: Int) -> String {
            let digits = String(n)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        // Years below 1000 keep four digits, so every date written reads back (`day(_:)`).
        return "\(padded(y, 4))-\(padded(m, 2))-\(padded(d, 2))"
    }

    /// The day count of a YYYY-MM-DD date: a real calendar day of a year from 1 to 9999 (nil
    /// otherwise, so no input can overflow the arithmetic or name 30 February).
    public static func day(_ text: String) -> Int? {
        let fields = text.split(separator: "-", omittingEmptySubsequences: false)
        guard fields.count == 3, fields[0].count == 4, fields[1].count == 2, fields[2].count == 2,
            fields.allSatisfy({ $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) })
        else { return nil }
        let parts = fields.compactMap { Int($0) }
        guard parts.count == 3, (1...9_999).contains(parts[0]), (1...12).contains(parts[1]) else { return nil }
        let leap = parts[0] % 4 == 0 && (parts[0] % 100 != 0 || parts[0] % 400 == 0)
        let lengths = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard (1...lengths[parts[1] - 1]).contains(parts[2]) else { return nil }
        return day(year: parts[0], month: parts[1], day: parts[2])
    }

    /// The day count of a calendar date (the inverse of `KPISeries.civil`); the caller passes a
    /// real date.
    public static func day(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}

import BTEDomain
import Foundation

/// Numbers as the commands print them. What they print is read back from records or computed
/// from stored data, so it can be any Double (1e300 from an amount stored before amounts were
/// bounded, or a 1e400 that reads as infinity): no conversion here can trap.
public enum NumberText {
    /// A whole JSON number as text; "-" when absent, fractional or beyond Int.
    public static func whole(_ value: JSONValue?) -> String { integer(value).map(String.init) ?? "-" }

    /// A whole JSON number; nil when absent, fractional or beyond Int.
    public static func integer(_ value: JSONValue?) -> Int? {
        guard case .number(let text)? = value, let number = Double(text) else { return nil }
        return Int(exactly: number)
    }

    /// A signal's value: without decimals when it is a whole number Int64 holds, else with three.
    public static func signal(_ value: Double) -> String {
        Int64(exactly: value).map(String.init) ?? String(format: "%.3f", value)
    }
}

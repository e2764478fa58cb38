/// A parsed JSON value. Numbers keep their source text so nothing is lost to floating point
/// (`==` compares that text; the canonical form compares values); objects keep their members
/// in source order.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.number(let a), .number(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    /// The JSON type's name, for error messages.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }
}

extension JSONValue {
    /// Serializes with object keys sorted by code points, numbers in their canonical text
    /// (`writeCanonicalNumber`) and no insignificant whitespace, so equal content always gives
    /// equal bytes. Stored JSON fields and `extra` are these bytes, and the content fingerprint
    /// is taken over them: what is stored and what identifies it are the same text.
    public func canonicalBytes() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        writeCanonical(into: &out)
        return out
    }

    public func writeCanonical(into out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let value): out.append(contentsOf: (value ? "true" : "false").utf8)
        case .number(let text): JSONValue.writeCanonicalNumber(text, into: &out)
        case .string(let text): JSONValue.writeString(text, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                item.writeCanonical(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            let sorted = members.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            for (index, member) in sorted.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.writeString(member.key, into: &out)
                out.append(UInt8(ascii: ":"))
                member.value.writeCanonical(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    public static func writeString(_ text: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Most text needs no escape: copied whole.
        if !needsEscape(text) {
            out.append(contentsOf: text.utf8)
            out.append(UInt8(ascii: "\""))
            return
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                appendHex(CollectionOfOne(byte), to: &out)
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// The one text of a number's value: `1.0`, `1e0` and `1` are all `1`, `-0` is `0`.
    /// Significant digits without leading or trailing zeros, plainly written while the decimal
    /// point is at most 21 digits right of the first digit or 6 zeros left of it (`0.000001`),
    /// otherwise as `d.ddde±x` (`1e+21`, `1.25e-9`): the form of ECMAScript's number-to-text,
    /// so JSON from JavaScript producers is mostly canonical already, but taken from the exact
    /// decimal, not a double. No value grows much: `1e400` stays `1e+400`, and an exponent
    /// beyond 64 bits keeps its digits. Text that is not a JSON number is written as given.
    static func writeCanonicalNumber(_ text: String, into out: inout [UInt8]) {
        var text = text
        text.withUTF8 { bytes in
            guard let number = DecimalParts(bytes) else {
                out.append(contentsOf: bytes)
                return
            }
            number.write(into: &out)
        }
    }

    public func canonicalString() -> String { String(decoding: canonicalBytes(), as: UTF8.self) }

    /// `text` as a JSON string literal, quotes included.
    public static func quoted(_ text: String) -> String {
        if !needsEscape(text) { return "\"" + text + "\"" }
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 8)
        writeString(text, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether `writeString` escapes any byte of the text: a quote, a backslash or a control
    /// character.
    static func needsEscape(_ text: String) -> Bool {
        func escaped(_ byte: UInt8) -> Bool { byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") }
        return text.utf8.withContiguousStorageIfAvailable { $0.contains(where: escaped) }
            ?? text.utf8.contains(where: escaped)
    }

    /// `{"key":value,…}` in the given order: keys quoted, values already JSON text.
    public static func objectBytes(_ fields: [(String, String)]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(fields.reduce(2) { $0 + $1.0.utf8.count + $1.1.utf8.count + 4 })
        out.append(UInt8(ascii: "{"))
        for (index, field) in fields.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            writeString(field.0, into: &out)
            out.append(UInt8(ascii: ":"))
            out.append(contentsOf: field.1.utf8)
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// `objectBytes` as text, for an object nested in another.
    public static func object(_ fields: [(String, String)]) -> String {
        String(decoding: objectBytes(fields), as: UTF8.self)
    }
}

extension JSONValue {
    /// Serializes keeping object members in their given order, indented by two spaces, for
    /// documents people read and edit (reports, proposals).
    public func prettyString() -> String {
        var out: [UInt8] = []
        writePretty(into: &out, depth: 0)
        out.append(0x0A)
        return String(decoding: out, as: UTF8.self)
    }

    private func writePretty(into out: inout [UInt8], depth: Int) {
        func newline(_ level: Int) {
            out.append(0x0A)
            out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: 2 * level))
        }
        switch self {
        case .array(let items) where !items.isEmpty:
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                newline(depth + 1)
                item.writePretty(into: &out, depth: depth + 1)
            }
            newline(depth)
            out.append(UInt8(ascii: "]"))
        case .object(let members) where !members.isEmpty:
            out.append(UInt8(ascii: "{"))
            for (index, member) in members.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                newline(depth + 1)
                JSONValue.writeString(member.key, into: &out)
                out.append(contentsOf: ": ".utf8)
                member.value.writePretty(into: &out, depth: depth + 1)
            }
            newline(depth)
            out.append(UInt8(ascii: "}"))
        case .array: out.append(contentsOf: "[]".utf8)
        case .object: out.append(contentsOf: "{}".utf8)
        default: writeCanonical(into: &out)
        }
    }
}

/// A JSON number's text split into sign, digits and exponent, without copying the digits.
private struct DecimalParts {
    let bytes: UnsafeBufferPointer<UInt8>
    let negative: Bool
    let integer: Range<Int>
    let fraction: Range<Int>
    let exponentNegative: Bool
    /// The exponent's digits without leading zeros (empty: zero).
    let exponent: Range<Int>

    init?(_ bytes: UnsafeBufferPointer<UInt8>) {
        func isDigit(_ index: Int) -> Bool { index < bytes.count && bytes[index] &- UInt8(ascii: "0") < 10 }
        func digits(from start: Int) -> Range<Int> {
            var end = start
            while isDigit(end) { end += 1 }
            return start..<end
        }
        self.bytes = bytes
        var index = 0
        negative = index < bytes.count && bytes[index] == UInt8(ascii: "-")
        if negative { index += 1 }
        integer = digits(from: index)
        guard !integer.isEmpty else { return nil }
        index = integer.upperBound
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            fraction = digits(from: index + 1)
            guard !fraction.isEmpty else { return nil }
            index = fraction.upperBound
        } else {
            fraction = index..<index
        }
        var exponentNegative = false
        var exponent = index..<index
        if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                exponentNegative = bytes[index] == UInt8(ascii: "-")
                index += 1
            }
            exponent = digits(from: index)
            guard !exponent.isEmpty else { return nil }
            index = exponent.upperBound
            while exponent.first.map({ bytes[$0] == UInt8(ascii: "0") }) == true { exponent = exponent.dropFirst() }
        }
        guard index == bytes.count else { return nil }
        self.exponentNegative = exponentNegative
        self.exponent = exponent
    }

    /// The `offset`-th digit of the integer and fraction digits together.
    private func digit(_ offset: Int) -> UInt8 {
        offset < integer.count
            ? bytes[integer.lowerBound + offset] : bytes[fraction.lowerBound + offset - integer.count]
    }

    func write(into out: inout [UInt8]) {
        let zero = UInt8(ascii: "0")
        let total = integer.count + fraction.count
        guard let first = (0..<total).first(where: { digit($0) != zero }),
            let last = (0..<total).last(where: { digit($0) != zero })
        else {
            out.append(zero)
            return
        }
        // value = significant × 10^(exponent − fraction.count + trailing zeros); with k
        // significant digits the decimal point sits `point` digits right of the first one.
        let k = last - first + 1
        let shift = total - 1 - last - fraction.count + k
        if negative { out.append(UInt8(ascii: "-")) }
        func significant(_ range: Range<Int>) { for offset in range { out.append(digit(first + offset)) } }
        func mantissa() {
            significant(0..<1)
            if k > 1 {
                out.append(UInt8(ascii: "."))
                significant(1..<k)
            }
            out.append(UInt8(ascii: "e"))
        }
        guard let exponentValue = smallExponent() else {
            // An exponent of more than 18 digits: far outside the plain range.
            mantissa()
            writeLargeExponent(plus: shift - 1, into: &out)
            return
        }
        let point = exponentValue + shift
        switch point {
        case _ where k <= point && point <= 21:
            significant(0..<k)
            out.append(contentsOf: repeatElement(zero, count: point - k))
        case 1...21:
            significant(0..<point)
            out.append(UInt8(ascii: "."))
            significant(point..<k)
        case -5...0:
            out.append(contentsOf: [zero, UInt8(ascii: ".")])
            out.append(contentsOf: repeatElement(zero, count: -point))
            significant(0..<k)
        default:
            mantissa()
            let power = point - 1  // |point| < 10^18 + the text's length: no overflow
            out.append(power < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"))
            out.append(contentsOf: String(power.magnitude).utf8)
        }
    }

    /// The exponent as an Int when it has at most 18 digits.
    private func smallExponent() -> Int? {
        guard exponent.count <= 18 else { return nil }
        var value = 0
        for index in exponent { value = value * 10 + Int(bytes[index] - UInt8(ascii: "0")) }
        return exponentNegative ? -value : value
    }

    /// Writes the sign and digits of exponent + `delta` in decimal, for exponents that need not
    /// fit in 64 bits. |delta| is bounded by the number's length, far below such exponents, so
    /// the sum keeps the exponent's sign.
    private func writeLargeExponent(plus delta: Int, into out: inout [UInt8]) {
        var digits = exponent.map { bytes[$0] - UInt8(ascii: "0") }
        // Moving away from zero adds to the magnitude; towards zero subtracts from it.
        let adding = (delta >= 0) != exponentNegative
        var rest = delta.magnitude
        var index = digits.count - 1
        var carry: UInt = 0
        while rest > 0 || carry > 0 {
            let step = rest % 10 + carry
            rest /= 10
            guard index >= 0 else {
                // Only an addition carries past the first digit.
                digits.insert(UInt8(step % 10), at: 0)
                carry = step / 10
                continue
            }
            let current = UInt(digits[index])
            if adding {
                digits[index] = UInt8((current + step) % 10)
                carry = (current + step) / 10
            } else {
                digits[index] = UInt8((current + 10 - step) % 10)
                carry = current < step ? 1 : 0
            }
            index -= 1
        }
        let significant = digits.drop { $0 == 0 }
        out.append(exponentNegative && !significant.isEmpty ? UInt8(ascii: "-") : UInt8(ascii: "+"))
        if significant.isEmpty { out.append(UInt8(ascii: "0")) }
        for digit in significant { out.append(digit + UInt8(ascii: "0")) }
    }
}

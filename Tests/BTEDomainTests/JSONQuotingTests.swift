import BTEDomain
import PropertyBased
import Testing

/// Every output record's strings go through `JSONValue.quoted` / `writeString`: text without
/// anything to escape is copied whole, the rest escaped byte by byte, and both give the same
/// bytes as the rule below.
struct JSONQuotingTests {
    /// The rule, written out: quote and backslash escaped, \n \r \t by name, other control
    /// characters as \u00XX, every other byte (DEL and non-ASCII included) as it is.
    static func reference(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = Array("0123456789abcdef")
                out += "\\u00" + String(hex[Int(scalar.value >> 4)]) + String(hex[Int(scalar.value & 0xF)])
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    @Test func handPickedTexts() {
        #expect(JSONValue.quoted("") == "\"\"")
        #expect(JSONValue.quoted("plain ascii") == "\"plain ascii\"")
        #expect(JSONValue.quoted("a\"b") == "\"a\\\"b\"")
        #expect(JSONValue.quoted("a\\b") == "\"a\\\\b\"")
        #expect(JSONValue.quoted("l1\nl2\r\t") == "\"l1\\nl2\\r\\t\"")
        #expect(JSONValue.quoted("\u{01}\u{1f}") == "\"\\u0001\\u001f\"")
        #expect(JSONValue.quoted("\u{7f}é✓") == "\"\u{7f}é✓\"")
        var out: [UInt8] = [UInt8(ascii: "[")]
        JSONValue.writeString("x\"y", into: &out)
        JSONValue.writeString("plain", into: &out)
        #expect(String(decoding: out, as: UTF8.self) == "[\"x\\\"y\"\"plain\"")
    }

    @Test func objectsKeepTheirOrderAndQuoteTheirKeys() {
        #expect(JSONValue.objectBytes([]) == Array("{}".utf8))
        let fields = [("b", "1"), ("a", "\"x\""), ("q\"k", "[true]")]
        #expect(
            String(decoding: JSONValue.objectBytes(fields), as: UTF8.self) == "{\"b\":1,\"a\":\"x\",\"q\\\"k\":[true]}")
        #expect(JSONValue.object([("n", "null")]) == "{\"n\":null}")
    }

    @Test func anyTextQuotesByTheRuleAndParsesBack() async throws {
        let characters = Gen<Character?>.element(of: Array("ab \"\\\n\r\t\u{01}\u{1f}\u{7f}é✓😀/")).map { $0 ?? "a" }
        await propertyCheck(count: 2_000, input: characters.string(of: 0...24)) { text in
            let quoted = JSONValue.quoted(text)
            #expect(quoted == Self.reference(text))
            var written: [UInt8] = []
            JSONValue.writeString(text, into: &written)
            #expect(written == Array(quoted.utf8))
            #expect((try? JSONParser.parse(written)) == .string(text))
        }
    }
}

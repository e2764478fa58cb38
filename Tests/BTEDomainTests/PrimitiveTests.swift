import BTEDomain
import Foundation
import Testing

@Suite struct TimestampTests {
    @Test func parsesAndFormats() throws {
        // 2025-11-17 is day 20409 since 1970-01-01: 20409 * 86400 = 1763337600.
        let t = try #require(Timestamp(rfc3339: "2025-11-17T00:00:00Z"))
        #expect(t.microseconds == 1_763_337_600_000_000)
        #expect(Timestamp(rfc3339: "2025-11-17T02:00:00+02:00") == t)
        #expect(Timestamp(rfc3339: "2025-11-16T19:00:00-05:00") == t)
        #expect(Timestamp(rfc3339: "2025-11-17t00:00:00z") == t)
        // Digits past microseconds are truncated.
        #expect(Timestamp(rfc3339: "2025-11-17T00:00:00.1234567Z")?.microseconds == 1_763_337_600_123_456)
        #expect(t.rfc3339 == "2025-11-17T00:00:00.000000Z")
        #expect(Timestamp(rfc3339: "2024-02-29T23:59:59.999999Z")?.rfc3339 == "2024-02-29T23:59:59.999999Z")
        #expect(Timestamp(rfc3339: "2023-02-29T00:00:00Z") == nil)
        #expect(Timestamp(rfc3339: "2025-11-17T24:00:00Z") == nil)
        #expect(Timestamp(rfc3339: "2025-11-17T00:00:00.Z") == nil)
    }

    @Test func monthBounds() throws {
        let t = try #require(Timestamp(rfc3339: "2024-12-31T23:59:59Z"))
        #expect(t.monthBounds.start.rfc3339 == "2024-12-01T00:00:00.000000Z")
        #expect(t.monthBounds.end.rfc3339 == "2025-01-01T00:00:00.000000Z")
        #expect(t.monthKey == 202412)
        // An instant given with an offset belongs to its UTC month.
        #expect(Timestamp(rfc3339: "2025-01-01T00:30:00+01:00")?.monthKey == 202412)
    }
}

@Suite struct JSONTests {
    @Test func canonicalFormSortsKeysAndNormalizesNumbers() throws {
        let value = try JSONParser.parse(Array("{ \"b\": 1.50, \"a\": [null, true, \"x\\ty\"], \"é\": -0 }".utf8))
        #expect(value.canonicalString() == "{\"a\":[null,true,\"x\\ty\"],\"b\":1.5,\"é\":0}")
        // Sorted by UTF-8 bytes at every depth: "B" (0x42) < "a" (0x61) < "é" (0xC3 0xA9).
        let nested = try JSONParser.parse(Array(#"{"é":{"z":1,"a":[{"y":2,"b":3}]},"a":0,"B":1}"#.utf8))
        #expect(nested.canonicalString() == #"{"B":1,"a":0,"é":{"a":[{"b":3,"y":2}],"z":1}}"#)
    }

    /// One text per value: digits without leading or trailing zeros, plain notation while the
    /// decimal point is at most 21 digits right of the first digit or 6 zeros left of it,
    /// otherwise d.ddde±x. Expected texts worked out by hand.
    @Test(arguments: [
        ("0", "0"), ("-0", "0"), ("0.000", "0"), ("0e10", "0"), ("-0.0e-5", "0"),
        ("1", "1"), ("1.0", "1"), ("1.50", "1.5"), ("0.50", "0.5"), ("-0.50", "-0.5"), ("-12", "-12"),
        ("1e2", "100"), ("1E+2", "100"), ("100", "100"), ("10e1", "100"), ("1000e-1", "100"),
        ("0.375", "0.375"), ("0.3333", "0.3333"), ("123.456", "123.456"), ("1234.5e-2", "12.345"),
        ("1e20", "100000000000000000000"), ("123456789012345678901", "123456789012345678901"),
        ("1e21", "1e+21"), ("1234567890123456789012", "1.234567890123456789012e+21"),
        ("0.000001", "0.000001"), ("1e-6", "0.000001"), ("1e-7", "1e-7"), ("0.0000001", "1e-7"),
        ("12.5e-10", "1.25e-9"), ("1e400", "1e+400"), ("10e399", "1e+400"), ("-2.50E-400", "-2.5e-400"),
        ("1e0000000000000000000000005", "100000"),
        // Exponents beyond 64 bits keep every digit.
        ("1e100000000000000000000", "1e+100000000000000000000"),
        ("10e99999999999999999999", "1e+100000000000000000000"),
        ("0.01e-99999999999999999999", "1e-100000000000000000001"),
        ("123e-100000000000000000000", "1.23e-99999999999999999998"),
        ("15e9223372036854775807", "1.5e+9223372036854775808"),
        ("0.15e-9223372036854775808", "1.5e-9223372036854775809"),
    ])
    func canonicalNumberText(_ source: String, _ canonical: String) throws {
        #expect(try JSONParser.parse(Array(source.utf8)).canonicalString() == canonical, "\(source)")
        // The canonical text is a fixed point.
        #expect(try JSONParser.parse(Array(canonical.utf8)).canonicalString() == canonical, "\(canonical)")
    }

    /// Generated spellings (leading and trailing zeros, fractions, exponents): the canonical
    /// text has the same value as a double, and is its own canonical text.
    @Test func canonicalNumbersKeepTheirValue() throws {
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        func digits(_ count: Int) -> String { String((0..<count).map { _ in Character(String(next(10))) }) }
        for _ in 0..<2_000 {
            var text = next(3) == 0 ? "-" : ""
            let integer = digits(1 + next(6))
            text += integer.count > 1 && integer.first == "0" ? "0" : integer
            if next(2) == 0 { text += "." + digits(1 + next(8)) }
            if next(2) == 0 { text += ["e", "E", "e+", "e-", "E-"][next(5)] + digits(1 + next(2)) }
            let canonical = try JSONParser.parse(Array(text.utf8)).canonicalString()
            #expect(Double(canonical) == Double(text), "\(text) → \(canonical)")
            #expect(
                try JSONParser.parse(Array(canonical.utf8)).canonicalString() == canonical, "\(text) → \(canonical)")
        }
    }

    /// A number built in code from text that is not JSON is written as given.
    @Test func nonJSONNumberTextIsKept() {
        #expect(JSONValue.number("NaN").canonicalString() == "NaN")
        #expect(JSONValue.number("1.").canonicalString() == "1.")
    }

    @Test func unicodeEscapesDecode() throws {
        let value = try JSONParser.parse(Array("\"\\u00e9\\ud83d\\ude00\"".utf8))
        #expect(value == .string("é😀"))
    }

    @Test func rejectsMalformedNumbers() {
        for text in ["01", "1.", "-", "1e", ".5", "+1", "NaN", "Infinity"] {
            #expect(throws: JSONParseError.self, "\(text)") { try JSONParser.parse(Array(text.utf8)) }
        }
    }

    @Test func manyMembersParseAndDuplicatesAreStillFound() throws {
        let members = (0..<25_000).map { "\"k\($0)\":\($0)" }
        let value = try JSONParser.parse(Array(("{" + members.joined(separator: ",") + "}").utf8))
        guard case .object(let parsed) = value else {
            Issue.record("not an object")
            return
        }
        #expect(parsed.count == 25_000)
        #expect(parsed.first?.key == "k0" && parsed.last?.key == "k24999")
        #expect(value["k24999"] == .number("24999"))
        let duplicated = "{" + members.joined(separator: ",") + ",\"k12345\":0}"
        #expect(isDuplicateMember(duplicated))
    }

    /// Around the size where the check changes method: a duplicate of any earlier member, and
    /// names that differ only late, are told apart at every size.
    @Test func duplicatesFoundAtEverySize() throws {
        for count in 1...20 {
            let keys = (0..<count).map { "member_\($0)" }
            let object = keys.map { "\"\($0)\":[\"\($0)\"]" }.joined(separator: ",")
            _ = try JSONParser.parse(Array("{\(object)}".utf8))
            for repeated in keys {
                #expect(isDuplicateMember("{\(object),\"\(repeated)\":null}"), "\(count) members, \(repeated) again")
            }
        }
        // A duplicate inside a nested object is found too; equal names in sibling objects are fine.
        let nested = "{" + (0..<12).map { "\"o\($0)\":{\"a\":1,\"b\":2}" }.joined(separator: ",") + "}"
        _ = try JSONParser.parse(Array(nested.utf8))
        let inner = (0..<12).map { "\"i\($0)\":1" }.joined(separator: ",")
        #expect(isDuplicateMember("{\"x\":{\(inner),\"i3\":2}}"))
    }

    @Test func depthLimit() throws {
        let ok = String(repeating: "[", count: 5) + String(repeating: "]", count: 5)
        _ = try JSONParser.parse(Array(ok.utf8), maxDepth: 5)
        let deep = String(repeating: "[", count: 6) + String(repeating: "]", count: 6)
        #expect(throws: JSONParseError.tooDeep(limit: 5)) { try JSONParser.parse(Array(deep.utf8), maxDepth: 5) }
    }

    @Test func uuidCanonicalForm() {
        #expect(canonicalUUID("0F8FAD5B-D9CB-469F-A165-70867728950E") == "0f8fad5b-d9cb-469f-a165-70867728950e")
        #expect(canonicalUUID("0f8fad5b-d9cb-469f-a165-70867728950") == nil)
        #expect(canonicalUUID("0f8fad5b_d9cb-469f-a165-70867728950e") == nil)
        #expect(canonicalUUID("0f8fad5b-d9cb-469f-a165-70867728950g") == nil)
    }
}

/// The published JSON Schemas of topics/ must say what the validator enforces.
@Suite struct TopicSchemaTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func load(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: Self.root.appendingPathComponent("topics/schemas/\(name).schema.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    func variants(_ document: [String: Any]) -> [[String: Any]] {
        (document["oneOf"] as? [[String: Any]]) ?? [document]
    }

    /// Every record the producers' guide shows is one ingest accepts.
    @Test func theProducersGuidesExamplesAreValid() throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("docs/producers.md"), encoding: .utf8)
        let blocks = text.components(separatedBy: "```json\n").dropFirst().compactMap {
            $0.components(separatedBy: "```").first
        }
        var checked = 0
        for block in blocks {
            guard let record = try? JSONParser.parse(Array(block.utf8)), case .string(let type)? = record["record_type"]
            else { continue }
            let kind: InputKind
            switch type {
            case "business_event", "user_action": kind = .business
            case "interaction_event": kind = .interaction
            default: continue
            }
            if case .failure(let rejection) = RecordValidator().validate(kind: kind, key: nil, value: Array(block.utf8))
            {
                Issue.record("\(rejection.code.rawValue): \(rejection.message)\n\(block)")
            }
            checked += 1
        }
        #expect(checked >= 4)
    }

    @Test(arguments: [
        ("interaction-event", InputKind.interaction), ("business-record", .business), ("intent-record", .intent),
    ])
    func schemaMatchesValidator(file: String, kind: InputKind) throws {
        let documents = variants(try load(file))
        #expect(documents.count == kind.schemas.count)
        for schema in kind.schemas {
            let document = try #require(
                documents.first { ($0["title"] as? String) == schema.recordType }, "\(schema.recordType)")
            let required = Set((document["required"] as? [String]) ?? []).subtracting(["record_type"])
            #expect(
                required == Set(schema.fields.filter(\.required).map(\.name)), "\(schema.recordType) required fields")
            let properties = try #require(document["properties"] as? [String: Any])
            #expect(
                Set(properties.keys).subtracting(["record_type"])
                    == Set(schema.fields.map(\.name) + schema.extraFields.map(\.name)),
                "\(schema.recordType) fields")
            for field in schema.fields {
                if case .enumeration(let allowed) = field.kind {
                    let property = properties[field.name] as? [String: Any]
                    #expect((property?["enum"] as? [String]) == allowed, "\(schema.recordType).\(field.name)")
                }
            }
        }
    }
}

/// Whether `text` is refused for a duplicate member name.
private func isDuplicateMember(_ text: String) -> Bool {
    do {
        _ = try JSONParser.parse(Array(text.utf8))
        return false
    } catch {
        guard case .syntax(let message, _) = error else { return false }
        return message.hasPrefix("duplicate member")
    }
}

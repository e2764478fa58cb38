import BTEDomain
import Testing

/// A valid interaction event; each case below changes one thing.
private func interaction(_ overrides: [String: String] = [:], drop: String? = nil) -> [UInt8] {
    var fields: [(String, String)] = [
        ("event_id", "\"0f8fad5b-d9cb-469f-a165-70867728950e\""),
        ("timestamp", "\"2025-11-17T10:30:00.5+01:00\""),
        ("event_type", "\"tap\""),
        ("user_id", "\"user_123\""),
        ("session_id", "\"session_456\""),
    ]
    fields.removeAll { $0.0 == drop }
    for (key, value) in overrides.sorted(by: { $0.key < $1.key }) {
        if let index = fields.firstIndex(where: { $0.0 == key }) {
            fields[index].1 = value
        } else {
            fields.append((key, value))
        }
    }
    return Array(("{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}").utf8)
}

private let validator = RecordValidator()

/// A bad message; shown by name in test output (values can be hundreds of kilobytes).
struct BadInput: Sendable, CustomTestStringConvertible {
    let name: String
    let value: [UInt8]
    let code: String
    init(_ name: String, _ value: [UInt8], _ code: String) {
        self.name = name
        self.value = value
        self.code = code
    }
    var testDescription: String { "\(name) → \(code)" }
}

private func rejectionCode(_ kind: InputKind, key: [UInt8]? = Array("k".utf8), _ value: [UInt8]?) -> String? {
    switch validator.validate(kind: kind, key: key, value: value) {
    case .success: return nil
    case .failure(let rejection): return rejection.code.rawValue
    }
}

@Suite struct ValidationTests {
    @Test func validInteractionEventBecomesColumns() throws {
        let record = try validator.validate(
            kind: .interaction, key: Array("user_123".utf8),
            value: interaction(["duration_ms": "1500", "surprise": "{\"b\":1,\"a\":[true]}"])
        ).get()
        #expect(record.table == .interactionEvents)
        #expect(record.id == "0f8fad5b-d9cb-469f-a165-70867728950e")
        // 10:30:00.5 at +01:00 is 09:30:00.5 UTC.
        #expect(record.timestamp.rfc3339 == "2025-11-17T09:30:00.500000Z")
        let columns = Dictionary(uniqueKeysWithValues: zip(record.schema.fields.map(\.name), record.values))
        #expect(columns["timestamp"] == "2025-11-17T09:30:00.500000Z")
        #expect(columns["duration_ms"] == "1500")
        #expect(columns["severity"] == "info")  // documented default
        #expect(columns["success"] == "t")  // documented default
        #expect(columns["device_type"] == .some(nil))
        // Unknown fields are kept, canonically ordered.
        #expect(record.extra == "{\"surprise\":{\"a\":[true],\"b\":1}}")
    }

    /// `workspace_id` of an interaction event is a known field: checked as a UUID, kept among the
    /// extra fields as it came (the log derives its column from them), none means the default.
    @Test func interactionWorkspaceIsAKnownField() throws {
        let scoped = try validator.validate(
            kind: .interaction, key: nil,
            value: interaction(["workspace_id": "\"AAAAAAAA-0000-4000-8000-000000000001\""])
        ).get()
        #expect(scoped.workspaceID == "aaaaaaaa-0000-4000-8000-000000000001")
        #expect(scoped.extra == "{\"workspace_id\":\"AAAAAAAA-0000-4000-8000-000000000001\"}")
        let unscoped = try validator.validate(kind: .interaction, key: nil, value: interaction([:])).get()
        #expect(unscoped.workspaceID == "00000000-0000-0000-0000-000000000000")
        let null = try validator.validate(kind: .interaction, key: nil, value: interaction(["workspace_id": "null"]))
            .get()
        #expect(null.workspaceID == "00000000-0000-0000-0000-000000000000")
        for (value, code) in [("\"acme\"", "invalid_uuid"), ("5", "wrong_type"), ("{}", "wrong_type")] {
            guard
                case .failure(let rejection) = validator.validate(
                    kind: .interaction, key: nil, value: interaction(["workspace_id": value]))
            else {
                Issue.record("workspace_id \(value) accepted")
                continue
            }
            #expect(rejection.code.rawValue == code)
        }
    }

    /// A timestamp the API stamped on receipt (`timestamp_stamped: true`) is left out of the
    /// fingerprint: a retry stamped anew is a re-delivery. Without the mark the time is content.
    @Test func aStampedTimestampIsNotContent() throws {
        func hash(_ time: String, stamped: String?) throws -> Int64 {
            var fields = ["timestamp": "\"\(time)\""]
            if let stamped { fields["timestamp_stamped"] = stamped }
            return try validator.validate(kind: .interaction, key: nil, value: interaction(fields)).get().contentHash
        }
        #expect(try hash("2026-01-01T00:00:00Z", stamped: "true") == hash("2026-01-01T00:00:01Z", stamped: "true"))
        #expect(try hash("2026-01-01T00:00:00Z", stamped: "false") != hash("2026-01-01T00:00:01Z", stamped: "false"))
        #expect(try hash("2026-01-01T00:00:00Z", stamped: nil) != hash("2026-01-01T00:00:01Z", stamped: nil))
        // The mark is content too: a stamped and an unstamped record are not the same event.
        #expect(try hash("2026-01-01T00:00:00Z", stamped: "true") != hash("2026-01-01T00:00:00Z", stamped: nil))
        for value in ["\"yes\"", "1", "{}"] {
            let result = validator.validate(
                kind: .interaction, key: nil, value: interaction(["timestamp_stamped": value]))
            guard case .failure(let rejection) = result else {
                Issue.record("timestamp_stamped \(value) accepted")
                continue
            }
            #expect(rejection.code.rawValue == "wrong_type")
        }
    }

    @Test func contentHashIgnoresKeyOrderAndWhitespace() throws {
        let a = try validator.validate(
            kind: .interaction, key: nil,
            value: Array(
                ("{\"event_id\":\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"timestamp\":\"2025-11-17T10:30:00Z\","
                    + "\"event_type\":\"tap\",\"user_id\":\"u\",\"session_id\":\"s\"}")
                    .utf8)
        ).get()
        let b = try validator.validate(
            kind: .interaction, key: nil,
            value: Array(
                ("{ \"session_id\":\"s\", \"user_id\":\"u\",\"event_type\":\"tap\",\n"
                    + "\"timestamp\":\"2025-11-17T10:30:00Z\",\"event_id\":\"0f8fad5b-d9cb-469f-a165-70867728950e\"}")
                    .utf8)
        ).get()
        let c = try validator.validate(
            kind: .interaction, key: nil,
            value: Array(
                ("{\"event_id\":\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"timestamp\":\"2025-11-17T10:30:00Z\","
                    + "\"event_type\":\"click\",\"user_id\":\"u\",\"session_id\":\"s\"}")
                    .utf8)
        ).get()
        #expect(a.contentHash == b.contentHash)
        #expect(a.contentHash != c.contentHash)
    }

    /// Content identity is on parsed values: JSON numbers compare by value wherever they are.
    @Test func contentHashComparesNumbersByValue() throws {
        func hash(_ kind: InputKind, _ value: [UInt8]) throws -> Int64 {
            try validator.validate(kind: kind, key: nil, value: value).get().contentHash
        }
        func business(_ metadata: String) -> [UInt8] {
            Array(
                """
                {"record_type":"business_event","event_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c001",
                 "event_type":"order.created","entity_type":"order","entity_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c002",
                 "workspace_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c003",
                 "sub_vertical_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c004",
                 "actor_user_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c005","timestamp":"2025-12-24T08:00:00Z",
                 "metadata":\(metadata)}
                """.utf8)
        }
        func intent(_ candidates: String) -> [UInt8] {
            Array(
                """
                {"record_type":"intent_event","event_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c001",
                 "ts":"2025-12-24T08:00:00Z",
                 "session_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c002","actor_id":"a","entrypoint":"chat",
                 "utterance_hash":"\(String(repeating: "ab", count: 32))","semreg_mode":"applied","outcome":"matched",
                 "verb_candidates_pre":\(candidates)}
                """.utf8)
        }
        let same: [(InputKind, [UInt8], [UInt8])] = [
            (.interaction, interaction(["context": #"{"x":1.0}"#]), interaction(["context": #"{"x":1}"#])),
            (
                .interaction, interaction(["interaction_data": #"{"x":1e2}"#]),
                interaction(["interaction_data": #"{"x":100}"#])
            ),
            (.interaction, interaction(["score": "0.50"]), interaction(["score": "0.5"])),
            (.interaction, interaction(["n": "-0"]), interaction(["n": "0"])),
            (.interaction, interaction(["list": "[1E+2,2.50e-1,-0.0]"]), interaction(["list": "[100,0.25,0]"])),
            (
                .interaction, interaction(["deep": #"{"a":{"b":[{"c":10e-1}]}}"#]),
                interaction(["deep": #"{"a":{"b":[{"c":1}]}}"#])
            ),
            (
                .interaction, interaction(["huge": "1e400", "tiny": "1e-400"]),
                interaction(["huge": "10e399", "tiny": "0.01e-398"])
            ),
            (
                .interaction, interaction(["huge": "1e100000000000000000000"]),
                interaction(["huge": "10e99999999999999999999"])
            ),
            (.business, business(#"{"amount":1500.00}"#), business(#"{"amount":1.5e3}"#)),
            (
                .intent, intent(#"[{"verb_fqn":"cbu.list","score":0.80}]"#),
                intent(#"[{"verb_fqn":"cbu.list","score":8e-1}]"#)
            ),
        ]
        for (index, (kind, a, b)) in same.enumerated() {
            #expect(try hash(kind, a) == hash(kind, b), "pair \(index)")
        }
        let different: [(InputKind, [UInt8], [UInt8])] = [
            (.interaction, interaction(["context": #"{"x":1}"#]), interaction(["context": #"{"x":1.0000001}"#])),
            (.interaction, interaction(["score": "100"]), interaction(["score": "1e3"])),
            (.interaction, interaction(["score": "-1"]), interaction(["score": "1"])),
            (.interaction, interaction(["score": "0"]), interaction(["score": "0.0000001"])),
            // Beyond double precision, still told apart.
            (
                .interaction, interaction(["id": "12345678901234567890123"]),
                interaction(["id": "12345678901234567890124"])
            ),
            (.interaction, interaction(["huge": "1e400"]), interaction(["huge": "1e401"])),
            (
                .interaction, interaction(["huge": "1e100000000000000000000"]),
                interaction(["huge": "1e100000000000000000001"])
            ),
            // A number is not the string of its digits.
            (.interaction, interaction(["score": "1"]), interaction(["score": "\"1\""])),
            (.business, business(#"{"amount":1500}"#), business(#"{"amount":1501}"#)),
        ]
        for (index, (kind, a, b)) in different.enumerated() {
            #expect(try hash(kind, a) != hash(kind, b), "pair \(index)")
        }
        // The stored JSON is the canonical form too.
        let record = try validator.validate(
            kind: .interaction, key: nil, value: interaction(["context": #"{"x":1.50,"y":1e2}"#, "n": "-0.0"])
        ).get()
        let columns = Dictionary(uniqueKeysWithValues: zip(record.schema.fields.map(\.name), record.values))
        #expect(columns["context"] == #"{"x":1.5,"y":100}"#)
        #expect(record.extra == #"{"n":0}"#)
    }

    @Test(arguments: [
        BadInput("not JSON", Array("{\"event_id\": oops".utf8), "invalid_json"),
        BadInput("trailing garbage", Array("{} {}".utf8), "invalid_json"),
        BadInput("array", Array("[1,2]".utf8), "not_an_object"),
        BadInput("string", Array("\"hello\"".utf8), "not_an_object"),
        BadInput("missing user_id", interaction(drop: "user_id"), "missing_field"),
        BadInput("null user_id", interaction(["user_id": "null"]), "missing_field"),
        BadInput("empty user_id", interaction(["user_id": "\"\""]), "missing_field"),
        BadInput("duration as string", interaction(["duration_ms": "\"fast\""]), "wrong_type"),
        BadInput("duration as float", interaction(["duration_ms": "1.5"]), "wrong_type"),
        BadInput("success as string", interaction(["success": "\"yes\""]), "wrong_type"),
        BadInput("negative duration", interaction(["duration_ms": "-1"]), "invalid_value"),
        BadInput("duration over int32", interaction(["duration_ms": "2147483648"]), "invalid_value"),
        BadInput("unknown event_type", interaction(["event_type": "\"teleport\""]), "unknown_enum_value"),
        BadInput("unknown device_type", interaction(["device_type": "\"fridge\""]), "unknown_enum_value"),
        BadInput("wrong record_type", interaction(["record_type": "\"business_event\""]), "unknown_record_type"),
        BadInput("bad uuid", interaction(["event_id": "\"0f8fad5b-d9cb-469f-a165-70867728950\""]), "invalid_uuid"),
        BadInput(
            "uuid without dashes", interaction(["event_id": "\"0f8fad5bd9cb469fa16570867728950e\""]), "invalid_uuid"),
        BadInput("no zone", interaction(["timestamp": "\"2025-11-17T10:30:00\""]), "invalid_timestamp"),
        BadInput("February 30", interaction(["timestamp": "\"2025-02-30T10:30:00Z\""]), "invalid_timestamp"),
        BadInput("words", interaction(["timestamp": "\"yesterday\""]), "invalid_timestamp"),
        BadInput("epoch number", interaction(["timestamp": "1700000000"]), "wrong_type"),
        BadInput("year 2150", interaction(["timestamp": "\"2150-01-01T00:00:00Z\""]), "timestamp_out_of_range"),
        BadInput("year 1969", interaction(["timestamp": "\"1969-12-31T23:59:59Z\""]), "timestamp_out_of_range"),
        BadInput("escaped NUL", interaction(["capsule_id": "\"a\\u0000b\""]), "nul_byte"),
        BadInput("escaped NUL in a key", interaction(["x\\u0000": "1"]), "nul_byte"),
        BadInput("raw NUL", interaction(["capsule_id": "\"a\u{0}b\""]), "nul_byte"),
        BadInput(
            "user_id too long", interaction(["user_id": "\"" + String(repeating: "u", count: 256) + "\""]),
            "value_too_long"),
        BadInput(
            "deep nesting",
            interaction(["context": String(repeating: "{\"a\":", count: 40) + "1" + String(repeating: "}", count: 40)]),
            "too_deeply_nested"),
        BadInput(
            "huge context", interaction(["context": "{\"blob\":\"" + String(repeating: "x", count: 70_000) + "\"}"]),
            "metadata_too_large"),
        BadInput("context not an object", interaction(["context": "[1]"]), "wrong_type"),
        BadInput(
            "duplicate member",
            Array(
                ("{\"event_id\":\"0f8fad5b-d9cb-469f-a165-70867728950e\","
                    + "\"event_id\":\"0f8fad5b-d9cb-469f-a165-70867728950e\"}")
                    .utf8), "invalid_json"),
        BadInput("lone surrogate", interaction(["capsule_id": "\"\\ud800\""]), "invalid_json"),
    ])
    func badInteractionInput(_ input: BadInput) {
        #expect(rejectionCode(.interaction, input.value) == input.code, "\(input.name)")
    }

    @Test func invalidUTF8() {
        var bytes = interaction(["capsule_id": "\"caf\u{E9}\""])
        // é is C3 A9; C3 followed by FF is not UTF-8.
        let index = bytes.firstIndex(of: 0xA9) ?? 0
        bytes[index] = 0xFF
        #expect(rejectionCode(.interaction, bytes) == "invalid_utf8")
    }

    @Test func envelopeChecks() {
        #expect(rejectionCode(.interaction, nil) == "tombstone")
        #expect(rejectionCode(.interaction, key: [], interaction()) == "empty_key")
        #expect(rejectionCode(.interaction, key: nil, interaction()) == nil)  // no key at all is allowed
        var limits = ValidationLimits()
        limits.maxMessageBytes = 100
        let small = RecordValidator(limits: limits)
        let value = interaction()
        #expect(value.count > 100)
        guard case .failure(let rejection) = small.validate(kind: .interaction, key: nil, value: value) else {
            Issue.record("oversize message accepted")
            return
        }
        #expect(rejection.code == .messageTooLarge)
    }

    @Test func businessEventRules() {
        func business(_ eventType: String, _ entityType: String) -> [UInt8] {
            Array(
                """
                {"record_type":"business_event","event_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c001",
                 "event_type":"\(eventType)",
                 "entity_type":"\(entityType)","entity_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c002",
                 "workspace_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c003",
                 "sub_vertical_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c004",
                 "actor_user_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c005","timestamp":"2025-12-24T08:00:00Z",
                 "metadata":{"stage":"proposal"}}
                """.utf8)
        }
        #expect(rejectionCode(.business, business("deal.created", "deal")) == nil)
        #expect(rejectionCode(.business, business("deal.created", "order")) == "invalid_value")
        #expect(rejectionCode(.business, business("deal.exploded", "deal")) == "unknown_enum_value")
        #expect(
            rejectionCode(.business, Array("{\"event_id\":\"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c001\"}".utf8))
                == "missing_field")  // record_type required
        #expect(rejectionCode(.business, Array("{\"record_type\":7}".utf8)) == "wrong_type")
        #expect(
            rejectionCode(.business, Array("{\"record_type\":\"intent_event\"}".utf8)) == "unknown_record_type")
    }

    @Test func userActionUsesActionIdAsIdentity() throws {
        let value = Array(
            """
            {"record_type":"user_action","action_id":"6F1C2B80-3C59-4D6A-9A51-7F64A3B1C001","action_type":"note.added",
             "workspace_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c003",
             "actor_user_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c005",
             "timestamp":"2025-12-24T08:00:00Z"}
            """.utf8)
        let record = try validator.validate(kind: .business, key: nil, value: value).get()
        #expect(record.table == .userActions)
        #expect(record.id == "6f1c2b80-3c59-4d6a-9a51-7f64a3b1c001")  // lowercased
        #expect(record.values[5] == "{}")  // metadata default
    }

    @Test func intentPIIIsRejected() {
        func intent(_ extra: String) -> [UInt8] {
            Array(
                """
                {"record_type":"intent_event","event_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c001",
                 "ts":"2025-12-24T08:00:00Z",
                 "session_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c002","actor_id":"a","entrypoint":"chat",
                 "utterance_hash":"\(String(repeating: "ab", count: 32))",
                 "semreg_mode":"applied","outcome":"matched"\(extra)}
                """.utf8)
        }
        #expect(rejectionCode(.intent, intent("")) == nil)
        #expect(rejectionCode(.intent, intent(#","utterance_preview":"create a cbu for [email]""#)) == nil)
        #expect(
            rejectionCode(.intent, intent(#","utterance":"create a cbu for jane@example.com""#)) == "pii_violation")
        #expect(rejectionCode(.intent, intent(#","raw_utterance":"x""#)) == "pii_violation")
        #expect(
            rejectionCode(.intent, intent(#","utterance_preview":"write to jane@example.com""#)) == "pii_violation")
        #expect(rejectionCode(.intent, intent(#","utterance_preview":"call +44 20 7946 0958""#)) == "pii_violation")
        // Short numbers are fine.
        #expect(rejectionCode(.intent, intent(#","utterance_preview":"fund 42 for 2025""#)) == nil)
        #expect(
            rejectionCode(.intent, intent(",\"utterance_preview\":\"\(String(repeating: "a", count: 81))\""))
                == "pii_violation")
        #expect(
            rejectionCode(.intent, intent(",\"utterance_preview\":\"\(String(repeating: "é", count: 80))\"")) == nil)
    }

    /// A record with raw personal data and another fault is refused for the personal data, so
    /// the reject is handled as such (its payload is never kept).
    @Test func personalDataWinsOverOtherFaults() {
        let missingActor =
            #"{"record_type":"intent_event","event_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c001","#
            + #""ts":"2025-12-24T08:00:00Z","session_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c002","#
            + #""entrypoint":"chat","utterance_hash":"x","#
            + #""semreg_mode":"applied","outcome":"matched""#
        #expect(
            rejectionCode(.intent, Array((missingActor + #","utterance":"call jane@example.com"}"#).utf8))
                == "pii_violation")
        #expect(
            rejectionCode(.intent, Array((missingActor + #","utterance_preview":"mail jane@example.com"}"#).utf8))
                == "pii_violation")
        #expect(rejectionCode(.intent, Array((missingActor + "}").utf8)) == "missing_field")
        let chat =
            #"{"record_type":"chat_event","event_id":"bad","ts":"2025-12-24T08:00:00Z","#
            + #""session_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c002","#
            + #""assistant_message":"your IBAN is DE89370400440532013000"}"#
        #expect(rejectionCode(.intent, Array(chat.utf8)) == "pii_violation")
    }

    @Test func intentEventHashMustBeLowercaseHex() {
        func intent(_ hash: String) -> [UInt8] {
            Array(
                """
                {"record_type":"intent_event","event_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c001",
                 "ts":"2025-12-24T08:00:00Z",
                 "session_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c002","actor_id":"a","entrypoint":"chat",
                 "utterance_hash":"\(hash)",
                 "semreg_mode":"applied","outcome":"matched","prompt_version":"p1"}
                """.utf8)
        }
        #expect(rejectionCode(.intent, intent(String(repeating: "ab", count: 32))) == nil)
        #expect(rejectionCode(.intent, intent(String(repeating: "AB", count: 32))) == "invalid_value")
        #expect(rejectionCode(.intent, intent("abc")) == "invalid_value")
    }
}

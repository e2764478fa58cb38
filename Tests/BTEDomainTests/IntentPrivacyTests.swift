import BTEDomain
import Testing

/// A valid intent event with `fields` (a JSON member list, leading comma included) appended.
private func intentEvent(_ fields: String = "") -> [UInt8] {
    Array(
        """
        {"record_type":"intent_event","event_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c001","ts":"2025-12-24T08:00:00Z",
         "session_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c002","actor_id":"a","entrypoint":"chat",
         "utterance_hash":"\(String(repeating: "ab", count: 32))","semreg_mode":"applied","outcome":"matched"\(fields)}
        """.utf8)
}

/// A valid chat event with `fields` appended.
private func chatEvent(_ fields: String = "") -> [UInt8] {
    Array(
        """
        {"record_type":"chat_event","event_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c001","ts":"2025-12-24T08:00:00Z",
         "session_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c002"\(fields)}
        """.utf8)
}

private func rejection(_ kind: InputKind, _ value: [UInt8]) -> Rejection? {
    switch RecordValidator().validate(kind: kind, key: nil, value: value) {
    case .success: return nil
    case .failure(let rejection): return rejection
    }
}

@Suite struct IntentPrivacyTests {
    @Test(arguments: [
        BadInput(
            "forbidden name nested in an object", intentEvent(#","debug":{"utterance":"open a case"}"#), "pii_violation"
        ),
        BadInput(
            "forbidden name in an array of objects", intentEvent(#","turns":[{"n":1},{"raw_utterance":"x"}]"#),
            "pii_violation"),
        BadInput(
            "forbidden name deep in arrays", intentEvent(#","log":[[{"a":{"utterance_text":"x"}}]]"#), "pii_violation"),
        BadInput("forbidden name with a null value", intentEvent(#","debug":{"utterance_raw":null}"#), "pii_violation"),
        BadInput("forbidden name in other letter case", intentEvent(#","Utterance":"x""#), "pii_violation"),
        BadInput(
            "nested forbidden name in other letter case", intentEvent(#","debug":{"UTTERANCE":"x"}"#), "pii_violation"),
        BadInput(
            "chat: nested assistant_message", chatEvent(#","debug":{"assistant_message":"hello"}"#), "pii_violation"),
        BadInput(
            "phone number in a top-level unknown field", intentEvent(#","user_text":"call me at +1 415 555 0100""#),
            "pii_violation"),
        BadInput(
            "e-mail address in a top-level unknown field", intentEvent(#","contact":"jane@example.com""#),
            "pii_violation"),
        BadInput(
            "e-mail address nested in an array",
            intentEvent(#","notes":["ok",{"to":["write to jane.doe@example.co.uk"]}]"#), "pii_violation"),
        BadInput(
            "account number nested in an object",
            intentEvent(#","debug":{"args":{"iban":"DE89 3704 0044 0532 0130 00"}}"#), "pii_violation"),
        BadInput(
            "e-mail address as a member name", intentEvent(#","by_person":{"jane@example.com":1}"#), "pii_violation"),
        BadInput("phone number as a top-level name", intentEvent(#","+14155550100":true"#), "pii_violation"),
        BadInput(
            "chat: e-mail address in an unknown field", chatEvent(#","debug":{"to":"jane@example.com"}"#),
            "pii_violation"),
        // Personal data wins over other faults of the same record.
        BadInput(
            "e-mail address and a missing field",
            Array(
                (#"{"record_type":"intent_event","event_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c001","#
                    + #""x":["jane@example.com"]}"#)
                    .utf8), "pii_violation"),
        BadInput(
            "nested forbidden name and a bad UUID",
            chatEvent(#","intent_event_id":"nope","debug":[{"utterance":"x"}]"#), "pii_violation"),
    ])
    func personalDataInUnknownFields(_ input: BadInput) {
        #expect(rejection(.intent, input.value)?.code.rawValue == input.code, "\(input.name)")
    }

    @Test func unknownFieldsWithoutPersonalDataAreKept() throws {
        let accepted = [
            intentEvent(#","missing_args":["name","jurisdiction"]"#),
            intentEvent(#","attempt":{"count":3,"codes":["E12","2025"],"fund":"fund 42 for 2025"}"#),
            // Numbers are not text: a count or an epoch time is not a phone number.
            intentEvent(#","latency_us":1766563200000000,"sizes":[12345678]"#),
            // The contract's own shapes: a UUID, an RFC 3339 time, a hex digest.
            intentEvent(
                #","parent_event_id":"0f8fad5b-d9cb-469f-a165-70867728950e","#
                    + #""started_at":"2025-12-24T08:00:00.123456+01:00""#
            ),
            intentEvent(",\"request_hash\":\"\(String(repeating: "0123456789abcdef", count: 4))\""),
            intentEvent(#","by_event":{"0f8fad5b-d9cb-469f-a165-70867728950e":{"at":"2025-12-24T08:00:00Z"}}"#),
            // '@' without a domain, digits in short runs.
            intentEvent(#","handle":"@jane","version":"1.2.3","ids":["12-34-56"]"#),
            chatEvent(#","debug":{"tokens":812,"model":"m-2025-06"}"#),
        ]
        for value in accepted {
            #expect(rejection(.intent, value) == nil, "\(String(decoding: value, as: UTF8.self))")
        }
        // The unknown fields are stored as given.
        let record = try RecordValidator().validate(
            kind: .intent, key: nil, value: intentEvent(#","missing_args":["name"]"#)
        ).get()
        #expect(record.extra == #"{"missing_args":["name"]}"#)
    }

    /// Known text fields are typed and bounded by the contract (ids, verbs, codes); only the
    /// previews are free text, and they have their own rule.
    @Test func knownTextFieldsAreNotScanned() {
        #expect(rejection(.intent, intentEvent(#","scope":"cbu:1234567","dsl_hash":"a1234567b""#)) == nil)
        #expect(rejection(.intent, chatEvent(#","turn_id":"2025-12-24-0001""#)) == nil)
    }

    /// Interaction and business records carry no conversational text; their unknown fields are
    /// not scanned.
    @Test func otherTopicsAreNotScanned() {
        let interaction =
            #"{"event_id":"0f8fad5b-d9cb-469f-a165-70867728950e","timestamp":"2025-11-17T10:30:00Z","#
            + #""event_type":"tap","user_id":"u","session_id":"s","debug":{"utterance":"x","to":"jane@example.com"}}"#
        #expect(rejection(.interaction, Array(interaction.utf8)) == nil)
    }

    @Test func rejectionNamesTheUnknownField() throws {
        let nested = try #require(rejection(.intent, intentEvent(#","debug":{"args":[{"utterance":"x"}]}"#)))
        #expect(nested.message.contains("debug"))
        #expect(nested.message.contains("utterance"))
        let phone = try #require(rejection(.intent, intentEvent(#","user_text":"call me at +1 415 555 0100""#)))
        #expect(phone.message.contains("user_text"))
        #expect(phone.message.contains("phone"))
        let mail = try #require(rejection(.intent, intentEvent(#","notes":{"to":"jane@example.com"}"#)))
        #expect(mail.message.contains("notes"))
        #expect(mail.message.contains("e-mail"))
    }

    /// Strings that make a backtracking matcher work quadratically are scanned in one pass;
    /// the answers stay right (time is checked by hand, not here).
    @Test func longStringsAreScannedCorrectly() {
        let local = String(repeating: "a", count: 60_000)
        #expect(rejection(.intent, intentEvent(",\"blob\":\"\(local)@\"")) == nil)
        #expect(rejection(.intent, intentEvent(",\"blob\":\"\(local)@b\"")) == nil)
        #expect(rejection(.intent, intentEvent(",\"blob\":\"\(local)@b.cd\""))?.code == .piiViolation)
        let digits = String(repeating: "12345 x ", count: 7_000)
        #expect(rejection(.intent, intentEvent(",\"blob\":\"\(digits)\"")) == nil)
        #expect(rejection(.intent, intentEvent(",\"blob\":\"\(digits)1234567\""))?.code == .piiViolation)
        // No dot is followed by two letters until the end.
        let dots = String(repeating: "a.", count: 30_000)
        #expect(rejection(.intent, intentEvent(",\"blob\":\"x@\(dots)\"")) == nil)
        #expect(rejection(.intent, intentEvent(",\"blob\":\"x@\(dots)ab\""))?.code == .piiViolation)
        #expect(rejection(.intent, intentEvent(",\"blob\":\"x@a\(String(repeating: ".a1", count: 20_000))\"")) == nil)
    }
}

/// The preview rule's e-mail and phone patterns, as regular expressions: the validator's
/// single-pass matchers must agree with them.
@Suite struct PreviewPatternTests {
    static func regexVerdict(_ text: String) -> Bool {
        text.contains(#/[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}/#)
            || text.matches(of: #/\+?\d[\d ().\-]{5,}\d/#).contains { $0.output.filter(\.isNumber).count >= 7 }
    }

    static func validatorVerdict(_ text: String) -> Bool {
        rejection(.intent, intentEvent(",\"utterance_preview\":\(JSONValue.quoted(text))"))?.code == .piiViolation
    }

    /// Deterministic pseudo-random previews over characters that matter to the patterns,
    /// including non-ASCII digits ("٣", "４", "²", "½", "一") that the regex's `\d` accepts.
    @Test func matchersAgreeWithTheRegexes() {
        let alphabet: [Character] = [
            "a", "Z", "0", "1", "7", "9", "@", ".", "-", "+", "_", "%", "(", ")", " ", ":",
            "é", "٣", "４", "²", "½", "一", "x", "@", "1", "2",
        ]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        var disagreements: [String] = []
        var flagged = 0
        for _ in 0..<3_000 {
            let text = String((0..<(1 + next(30))).map { _ in alphabet[next(alphabet.count)] })
            let expected = Self.regexVerdict(text)
            if expected { flagged += 1 }
            if Self.validatorVerdict(text) != expected { disagreements.append(text) }
        }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(10))")
        #expect(flagged > 100)  // the sample does exercise both answers
    }

    @Test(arguments: [
        "jane@example.com", "a@b.cd", "x@ab", "@example.com", "jane@.com", "jane@example.c", "jane@ex-ample.org",
        "call +44 20 7946 0958", "4155550100", "415 555 01", "(415) 555-0100", "1.2.3.4.5.6.7", "12-34-56",
        "fund 42 for 2025", "2025-12-24", "٤١٥٥٥٥٠١٠٠", "４１５５５５０１００",
        "一二三四五六七", "12345\u{301}67",
    ])
    func knownCasesAgree(_ text: String) {
        #expect(Self.validatorVerdict(text) == Self.regexVerdict(text), "\(text)")
    }
}

/// An intent-topic record of `recordType` with members replaced or added (values are JSON text).
private func intentTopicRecord(_ recordType: String, _ overrides: [(String, String)]) -> [UInt8] {
    var fields: [(String, String)] =
        recordType == "chat_event"
        ? [
            ("record_type", "\"chat_event\""), ("event_id", "\"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c001\""),
            ("ts", "\"2025-12-24T08:00:00Z\""), ("session_id", "\"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c002\""),
        ]
        : [
            ("record_type", "\"intent_event\""), ("event_id", "\"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c001\""),
            ("ts", "\"2025-12-24T08:00:00Z\""), ("session_id", "\"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c002\""),
            ("actor_id", "\"a\""), ("entrypoint", "\"chat\""),
            ("utterance_hash", "\"\(String(repeating: "ab", count: 32))\""),
            ("semreg_mode", "\"applied\""), ("outcome", "\"matched\""),
        ]
    for (key, value) in overrides {
        if let index = fields.firstIndex(where: { $0.0 == key }) {
            fields[index].1 = value
        } else {
            fields.append((key, value))
        }
    }
    return Array(("{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}").utf8)
}

/// Intent-topic rejects are stored without their payload; their messages must not bring any of
/// it back. Every value below carries the marker (or is the marker's year), and every reject
/// path a value can reach is taken once.
@Suite struct IntentRejectMessageTests {
    static let marker = "SECRETMARKER"
    static let m = "\"SECRETMARKER\""

    static let cases: [BadInput] = [
        BadInput("event_id not a UUID", intentTopicRecord("intent_event", [("event_id", m)]), "invalid_uuid"),
        BadInput(
            "session_id almost a UUID",
            intentTopicRecord("intent_event", [("session_id", "\"SECRETMARKER-d9cb-469f-a165-70867728950e\"")]),
            "invalid_uuid"),
        BadInput(
            "subject_ref_id not a UUID", intentTopicRecord("intent_event", [("subject_ref_id", m)]), "invalid_uuid"),
        BadInput(
            "run_sheet_entry_id not a UUID", intentTopicRecord("intent_event", [("run_sheet_entry_id", m)]),
            "invalid_uuid"),
        BadInput(
            "entrypoint outside its list", intentTopicRecord("intent_event", [("entrypoint", m)]),
            "unknown_enum_value"),
        BadInput(
            "semreg_mode outside its list", intentTopicRecord("intent_event", [("semreg_mode", m)]),
            "unknown_enum_value"),
        BadInput(
            "subject_ref_type outside its list", intentTopicRecord("intent_event", [("subject_ref_type", m)]),
            "unknown_enum_value"),
        BadInput(
            "selection_source outside its list", intentTopicRecord("intent_event", [("selection_source", m)]),
            "unknown_enum_value"),
        BadInput("ts not a timestamp", intentTopicRecord("intent_event", [("ts", m)]), "invalid_timestamp"),
        BadInput(
            "ts without a zone", intentTopicRecord("intent_event", [("ts", "\"2025-12-24T08:00:00SECRETMARKER\"")]),
            "invalid_timestamp"),
        BadInput(
            "ts out of range", intentTopicRecord("intent_event", [("ts", "\"2150-01-01T00:00:00Z\"")]),
            "timestamp_out_of_range"),
        BadInput("utterance_hash not hex", intentTopicRecord("intent_event", [("utterance_hash", m)]), "invalid_value"),
        BadInput(
            "actor_id too long",
            intentTopicRecord("intent_event", [("actor_id", "\"\(String(repeating: marker, count: 22))\"")]),
            "value_too_long"),
        BadInput("actor_id not a string", intentTopicRecord("intent_event", [("actor_id", "[\(m)]")]), "wrong_type"),
        BadInput(
            "macro_semreg_checked not a boolean", intentTopicRecord("intent_event", [("macro_semreg_checked", m)]),
            "wrong_type"),
        BadInput(
            "verb list not an array", intentTopicRecord("intent_event", [("verb_candidates_pre", m)]), "wrong_type"),
        BadInput(
            "verb list too large",
            intentTopicRecord(
                "intent_event",
                [("verb_candidates_pre", "[" + Array(repeating: m, count: 5_000).joined(separator: ",") + "]")]),
            "metadata_too_large"),
        BadInput(
            "unknown fields too large",
            intentTopicRecord("intent_event", [("blob", "\"\(String(repeating: marker, count: 6_000))\"")]),
            "metadata_too_large"),
        BadInput("record_type unknown", intentTopicRecord("intent_event", [("record_type", m)]), "unknown_record_type"),
        BadInput(
            "record_type not a string", intentTopicRecord("intent_event", [("record_type", "{\"x\":\(m)}")]),
            "wrong_type"),
        BadInput(
            "preview too long",
            intentTopicRecord("intent_event", [("utterance_preview", "\"\(String(repeating: marker, count: 7))\"")]),
            "pii_violation"),
        BadInput(
            "preview with an e-mail address",
            intentTopicRecord("intent_event", [("utterance_preview", "\"SECRETMARKER@example.com\"")]),
            "pii_violation"),
        BadInput(
            "unknown field with a phone number",
            intentTopicRecord("intent_event", [("note", "\"SECRETMARKER +1 415 555 0100\"")]), "pii_violation"),
        BadInput(
            "unknown field named by an e-mail address",
            intentTopicRecord("intent_event", [("SECRETMARKER@example.com", "1")]), "pii_violation"),
        BadInput(
            "inner name above a raw utterance",
            intentTopicRecord("intent_event", [("debug", "{\"SECRETMARKER\":{\"utterance\":\"x\"}}")]),
            "pii_violation"),
        BadInput(
            "duplicate member", Array(#"{"record_type":"intent_event","SECRETMARKER":1,"SECRETMARKER":2}"#.utf8),
            "invalid_json"),
        BadInput("unterminated string", Array("{\"record_type\":\"SECRETMARKER".utf8), "invalid_json"),
        BadInput("bad escape", Array("{\"record_type\":\"SECRETMARKER\\q\"}".utf8), "invalid_json"),
        BadInput(
            "NUL in a value", intentTopicRecord("intent_event", [("actor_id", "\"SECRETMARKER\\u0000\"")]), "nul_byte"),
        BadInput("not an object", Array(m.utf8), "not_an_object"),
        BadInput(
            "chat: intent_event_id not a UUID", intentTopicRecord("chat_event", [("intent_event_id", m)]),
            "invalid_uuid"),
        BadInput(
            "chat: assistant_message_hash not hex", intentTopicRecord("chat_event", [("assistant_message_hash", m)]),
            "invalid_value"),
        BadInput("chat: ts not a timestamp", intentTopicRecord("chat_event", [("ts", m)]), "invalid_timestamp"),
        BadInput(
            "chat: turn_id too long",
            intentTopicRecord("chat_event", [("turn_id", "\"\(String(repeating: marker, count: 22))\"")]),
            "value_too_long"),
        BadInput(
            "chat: preview with a phone number",
            intentTopicRecord("chat_event", [("assistant_message_preview", "\"SECRETMARKER 4155550100\"")]),
            "pii_violation"),
    ]

    @Test(arguments: cases)
    func messagesQuoteNoValues(_ input: BadInput) throws {
        guard case .failure(let rejection) = RecordValidator().validate(kind: .intent, key: nil, value: input.value)
        else {
            Issue.record("\(input.name) was accepted")
            return
        }
        #expect(rejection.code.rawValue == input.code, "\(input.name)")
        #expect(
            !rejection.message.lowercased().contains(Self.marker.lowercased()), "\(input.name): \(rejection.message)")
        #expect(!rejection.message.contains("2150"), "\(input.name): \(rejection.message)")
    }

    /// The same faults on other topics still quote the value, which helps the producer.
    @Test func otherTopicsStillQuoteValues() throws {
        let value = Array(
            (#"{"event_id":"SECRETMARKER","timestamp":"2025-11-17T10:30:00Z","#
                + #""event_type":"tap","user_id":"u","session_id":"s"}"#)
                .utf8)
        guard case .failure(let rejection) = RecordValidator().validate(kind: .interaction, key: nil, value: value)
        else {
            Issue.record("accepted")
            return
        }
        #expect(rejection.message.contains(Self.marker))
    }
}

import BTEDomain
import Testing

/// The business events with rules of their own: insight feedback and the models' controls.
@Suite struct BusinessVocabularyTests {
    static func event(_ type: String, entity: String, metadata: String) -> [UInt8] {
        Array(
            """
            {"record_type":"business_event","event_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c001",
             "event_type":"\(type)","entity_type":"\(entity)",
             "entity_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c002","workspace_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c003",
             "sub_vertical_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c004",
             "actor_user_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c005",
             "timestamp":"2026-11-02T08:00:00Z","metadata":\(metadata)}
            """.utf8)
    }

    static func code(_ value: [UInt8]) -> String? {
        switch RecordValidator().validate(kind: .business, key: nil, value: value) {
        case .success: return nil
        case .failure(let rejection): return rejection.code.rawValue
        }
    }

    @Test(
        arguments: [
            // Each control at both ends of its range, and several at once.
            (#"{"rollout_pct":0}"#, nil), (#"{"rollout_pct":1}"#, nil), (#"{"promo_voltage":0.35}"#, nil),
            (#"{"price_index":0.8}"#, nil), (#"{"price_index":1.2}"#, nil), (#"{"copy_score":1.0}"#, nil),
            (#"{"rollout_pct":0.5,"price_index":1.05,"note":"spring"}"#, nil),
            // Outside the ranges, not numbers, or not finite.
            (#"{"rollout_pct":1.01}"#, "invalid_value"), (#"{"rollout_pct":-0.01}"#, "invalid_value"),
            (#"{"promo_voltage":2}"#, "invalid_value"), (#"{"price_index":0.79}"#, "invalid_value"),
            (#"{"price_index":1.21}"#, "invalid_value"), (#"{"copy_score":-1}"#, "invalid_value"),
            (#"{"rollout_pct":"0.5"}"#, "invalid_value"), (#"{"copy_score":null}"#, "invalid_value"),
            (#"{"promo_voltage":1e999}"#, "invalid_value"),
            (#"{"rollout_pct":0.5,"copy_score":3}"#, "invalid_value"),
            // No control at all.
            (#"{}"#, "missing_field"), (#"{"note":"x"}"#, "missing_field"),
        ] as [(String, String?)])
    func controlChanged(metadata: String, expected: String?) {
        #expect(Self.code(Self.event("control.changed", entity: "control", metadata: metadata)) == expected)
    }

    @Test(
        arguments: [
            // Amounts: finite, from 0 to 1e12; absent or null is no amount.
            ("order.created", "order", #"{"amount":0}"#, nil), ("order.created", "order", #"{"amount":1e12}"#, nil),
            ("deal.won", "deal", #"{"amount":1500.5}"#, nil), ("deal.created", "deal", #"{"stage":"x"}"#, nil),
            ("deal.lost", "deal", #"{"amount":null}"#, nil),
            ("order.created", "order", #"{"amount":1e400}"#, "invalid_value"),
            ("order.created", "order", #"{"amount":-1e400}"#, "invalid_value"),
            ("order.created", "order", #"{"amount":1000000000000.01}"#, "invalid_value"),
            ("order.created", "order", #"{"amount":-0.01}"#, "invalid_value"),
            ("deal.stage_changed", "deal", #"{"amount":"12.50"}"#, "invalid_value"),
            ("deal.won", "deal", #"{"amount":{"usd":1}}"#, "invalid_value"),
            // Expected and realized values: finite, within ±1e12 (an act can lose money).
            ("recommendation.given", "recommendation", #"{"expected_value":-1e12}"#, nil),
            ("recommendation.given", "recommendation", #"{"expected_value":1e308}"#, "invalid_value"),
            ("recommendation.given", "recommendation", #"{"expected_value":1e999}"#, "invalid_value"),
            ("recommendation.acted", "recommendation", #"{"realized_value":-250}"#, nil),
            ("recommendation.acted", "recommendation", #"{"realized_value":-1.1e12}"#, "invalid_value"),
            ("recommendation.acted", "recommendation", #"{"realized_value":true}"#, "invalid_value"),
            // Only the events whose number is summed: an amount elsewhere is kept as it is.
            ("contact.engaged", "contact", #"{"amount":1e400}"#, nil),
            ("recommendation.acted", "recommendation", #"{"expected_value":1e400}"#, nil),
        ] as [(String, String, String, String?)])
    func summedNumbersAreFiniteAndBounded(type: String, entity: String, metadata: String, expected: String?) {
        #expect(Self.code(Self.event(type, entity: entity, metadata: metadata)) == expected)
    }

    @Test func controlAndIncidentEntitiesMatchTheirTypes() {
        #expect(Self.code(Self.event("incident.started", entity: "incident", metadata: "{}")) == nil)
        #expect(Self.code(Self.event("incident.resolved", entity: "incident", metadata: "{}")) == nil)
        #expect(
            Self.code(Self.event("control.changed", entity: "deal", metadata: #"{"rollout_pct":1}"#)) == "invalid_value"
        )
    }

    @Test(
        arguments: [
            (#"{"verdict":"useful"}"#, nil), (#"{"verdict":"acted"}"#, nil),
            (#"{"verdict":"impression","delivery_id":"6f1c2b80-3c59-4d6a-9a51-7f64a3b1c0dd"}"#, nil),
            (#"{"verdict":"clicked","delivery_id":null}"#, nil),
            (#"{"verdict":"clicked","delivery_id":"d-1"}"#, "invalid_uuid"),
            (#"{"verdict":"useful","delivery_id":7}"#, "invalid_uuid"),
            (#"{"verdict":"great"}"#, "unknown_enum_value"),
            (#"{}"#, "missing_field"), (#"{"verdict":1}"#, "missing_field"),
        ] as [(String, String?)])
    func insightFeedback(metadata: String, expected: String?) {
        #expect(Self.code(Self.event("insight.feedback", entity: "insight", metadata: metadata)) == expected)
    }

    @Test(
        arguments: [
            (#"{"arm":"treatment"}"#, nil), (#"{"arm":"control","cohort":"spring"}"#, nil),
            (#"{"arm":"variant_b"}"#, "unknown_enum_value"), (#"{}"#, "missing_field"),
            (#"{"arm":1}"#, "missing_field"),
        ] as [(String, String?)])
    func experimentAssigned(metadata: String, expected: String?) {
        #expect(Self.code(Self.event("experiment.assigned", entity: "experiment", metadata: metadata)) == expected)
        // The entity must be the experiment.
        #expect(Self.code(Self.event("experiment.assigned", entity: "deal", metadata: metadata)) == "invalid_value")
    }

    static let hash = String(repeating: "0f", count: 32)
    static let id = "6f1c2b80-3c59-4d6a-9a51-7f64a3b1c0aa"

    @Test(
        arguments: [
            // No subject, or a subject of each kind.
            (#"{}"#, nil), (#"{"path":"/deals"}"#, nil),
            (#"{"subject_type":"deal","subject_id":"\#(id)"}"#, nil),
            (#"{"subject_type":"pipeline","subject_id":"\#(id)"}"#, nil),
            (#"{"subject_type":"customer","subject_id":"\#(id.uppercased())"}"#, nil),
            // Half a subject, an unknown kind, an id that is no UUID, a number.
            (#"{"subject_type":"deal"}"#, "missing_field"), (#"{"subject_id":"\#(id)"}"#, "missing_field"),
            (#"{"subject_type":"invoice","subject_id":"\#(id)"}"#, "unknown_enum_value"),
            (#"{"subject_type":"deal","subject_id":"deal-7"}"#, "invalid_uuid"),
            (#"{"subject_type":"deal","subject_id":7}"#, "wrong_type"),
            // A null subject is no subject.
            (#"{"subject_type":null,"subject_id":null}"#, nil),
        ] as [(String, String?)])
    func pageViewSubjects(metadata: String, expected: String?) {
        #expect(Self.code(Self.event("page.viewed", entity: "page", metadata: metadata)) == expected, "\(metadata)")
    }

    @Test(
        arguments: [
            (#"{"query_hash":"\#(hash)"}"#, nil),
            (#"{"query_hash":"\#(hash)","result_entity_ids":["\#(id)"]}"#, nil),
            (#"{"query_hash":"\#(hash)","result_entity_ids":[]}"#, nil),
            // The raw query is personal content, under any of its names, even beside a hash.
            (#"{"query_hash":"\#(hash)","query":"acme renewal"}"#, "pii_violation"),
            (#"{"search_text":"acme"}"#, "pii_violation"),
            (#"{}"#, "missing_field"),
            (#"{"query_hash":"\#(hash.uppercased())"}"#, "invalid_value"),
            (#"{"query_hash":"\#(String(hash.dropLast()))"}"#, "invalid_value"),
            (#"{"query_hash":"\#(hash)","result_entity_ids":"\#(id)"}"#, "wrong_type"),
            (#"{"query_hash":"\#(hash)","result_entity_ids":["not-a-uuid"]}"#, "invalid_value"),
        ] as [(String, String?)])
    func searches(metadata: String, expected: String?) {
        #expect(
            Self.code(Self.event("search.performed", entity: "search", metadata: metadata)) == expected, "\(metadata)")
        // The entity is the search.
        if expected == nil {
            #expect(Self.code(Self.event("search.performed", entity: "page", metadata: metadata)) == "invalid_value")
        }
    }

    @Test func searchResultsAreBounded() {
        // 100 ids are accepted, 101 are not.
        func ids(_ n: Int) -> String { Array(repeating: "\"\(Self.id)\"", count: n).joined(separator: ",") }
        let at = #"{"query_hash":"\#(Self.hash)","result_entity_ids":["#
        #expect(Self.code(Self.event("search.performed", entity: "search", metadata: at + ids(100) + "]}")) == nil)
        #expect(
            Self.code(Self.event("search.performed", entity: "search", metadata: at + ids(101) + "]}"))
                == "invalid_value")
    }

    @Test(
        arguments: [
            (#"{"changed_fields":["email","phone"]}"#, nil), (#"{"changed_fields":[]}"#, nil),
            (#"{}"#, "missing_field"), (#"{"changed_fields":"email"}"#, "wrong_type"),
            (#"{"changed_fields":[""]}"#, "invalid_value"), (#"{"changed_fields":[3]}"#, "invalid_value"),
            (#"{"changed_fields":["\#(String(repeating: "f", count: 65))"]}"#, "invalid_value"),
        ] as [(String, String?)])
    func contactUpdates(metadata: String, expected: String?) {
        #expect(
            Self.code(Self.event("contact.updated", entity: "contact", metadata: metadata)) == expected, "\(metadata)")
    }

    @Test(
        arguments: [
            (#"{"outcome":"matched"}"#, nil), (#"{"outcome":"clarify_verb","intent_event_id":"\#(id)"}"#, nil),
            (#"{"outcome":"matched","subject_type":"deal","subject_id":"\#(id)"}"#, nil),
            (#"{}"#, "missing_field"), (#"{"outcome":7}"#, "missing_field"), (#"{"outcome":""}"#, "invalid_value"),
            (#"{"outcome":"\#(String(repeating: "m", count: 65))"}"#, "invalid_value"),
            (#"{"outcome":"matched","intent_event_id":"i-7"}"#, "invalid_uuid"),
            // Its subject follows the page view's rules.
            (#"{"outcome":"matched","subject_type":"deal"}"#, "missing_field"),
            (#"{"outcome":"matched","subject_type":"invoice","subject_id":"\#(id)"}"#, "unknown_enum_value"),
            (#"{"outcome":"matched","subject_type":"deal","subject_id":"deal-7"}"#, "invalid_uuid"),
        ] as [(String, String?)])
    func resolvedIntents(metadata: String, expected: String?) {
        #expect(
            Self.code(Self.event("intent.resolved", entity: "intent", metadata: metadata)) == expected, "\(metadata)")
    }

    @Test(
        arguments: [
            (#"{"purpose":"in_context_insights"}"#, nil), (#"{"purpose":"behavioral_profile"}"#, nil),
            (#"{"purpose":"analytics"}"#, nil), (#"{}"#, "missing_field"), (#"{"purpose":1}"#, "missing_field"),
            (#"{"purpose":"marketing"}"#, "unknown_enum_value"),
        ] as [(String, String?)])
    func consents(metadata: String, expected: String?) {
        for type in ["consent.granted", "consent.withdrawn"] {
            #expect(
                Self.code(Self.event(type, entity: "consent", metadata: metadata)) == expected, "\(type) \(metadata)")
        }
    }

    /// Seed 003's context fields, checked on every business event that carries them.
    @Test(
        arguments: [
            (#"{"tier":1,"department":"sales","personalContext":false,"userIntent":"researching"}"#, nil),
            (#"{"tier":4,"userIntent":"exploring"}"#, nil), (#"{"tier":null}"#, nil),
            (#"{"tier":0}"#, "invalid_value"), (#"{"tier":5}"#, "invalid_value"), (#"{"tier":2.5}"#, "invalid_value"),
            (#"{"tier":"2"}"#, "invalid_value"), (#"{"department":""}"#, "invalid_value"),
            (#"{"department":7}"#, "invalid_value"), (#"{"personalContext":"yes"}"#, "wrong_type"),
            (#"{"userIntent":"buying"}"#, "unknown_enum_value"), (#"{"userIntent":1}"#, "unknown_enum_value"),
        ] as [(String, String?)])
    func seedContext(metadata: String, expected: String?) {
        #expect(Self.code(Self.event("page.viewed", entity: "page", metadata: metadata)) == expected, "\(metadata)")
        #expect(Self.code(Self.event("deal.created", entity: "deal", metadata: metadata)) == expected, "\(metadata)")
    }
}

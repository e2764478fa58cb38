/// What business events say about a user's context: the subject of a page view, a search, the
/// fields a contact update changed, and the context every business event may carry (tier,
/// department, personal context, intent). The insight triggers read them, so each is checked at
/// ingest: a value the triggers would misread is refused, never stored.
public enum ContextVocabulary {
    /// `metadata.subject_type` of a `page.viewed`.
    public static let subjectTypes = ["deal", "contact", "customer", "pipeline"]
    /// `metadata.outcome` of an `intent.resolved` that leaves the orchestrator waiting for the
    /// user's answer: the turn is not finished, so it is not a breakpoint.
    public static let clarifyOutcomes = ["clarify_verb", "clarify_args"]
    /// `metadata.purpose` of a `consent.granted` or `consent.withdrawn`: what the user allows.
    /// `in_context_insights`: insights delivered to them in context; `behavioral_profile`: their
    /// behavioral vector; `analytics`: their events in the workspace's aggregates.
    public static let consentPurposes = ConsentPurpose.allCases.map(\.rawValue)
    /// `metadata.userIntent` of any business event.
    public static let userIntents = ["researching", "comparing", "troubleshooting", "exploring"]
    /// `metadata.tier` of any business event.
    public static let tiers = 1...4
    /// At most this many ids in `result_entity_ids` and names in `changed_fields`.
    public static let maxListItems = 100
    public static let maxNameLength = 64
    /// A search's raw text is personal content: producers send `query_hash` (SHA-256 of the
    /// query, as for utterances) and never one of these.
    public static let rawQueryFields = ["query", "raw_query", "query_text", "search_text"]

    static func check(_ eventType: String, _ metadata: JSONValue?) -> Rejection? {
        guard case .object(let members)? = metadata else { return nil }
        func value(_ key: String) -> JSONValue? {
            guard let found = members.last(where: { $0.key == key })?.value, found != .null else { return nil }
            return found
        }
        if let rejection = checkContext(value) { return rejection }
        switch eventType {
        case "page.viewed":
            return checkSubject(eventType, value)
        case "intent.resolved":
            guard case .string(let outcome)? = value("outcome") else {
                return Rejection(
                    .missingField, "an intent.resolved needs metadata.outcome (a string, as in its intent event)")
            }
            guard !outcome.isEmpty, outcome.utf8.count <= maxNameLength else {
                return Rejection(.invalidValue, "metadata.outcome must be a non-empty name of at most 64 bytes")
            }
            if let id = value("intent_event_id") {
                guard case .string(let text) = id, canonicalUUID(text) != nil else {
                    return Rejection(.invalidUUID, "metadata.intent_event_id must be a UUID")
                }
            }
            return checkSubject(eventType, value)
        case "consent.granted", "consent.withdrawn":
            guard case .string(let purpose)? = value("purpose") else {
                return Rejection(.missingField, "a \(eventType) needs metadata.purpose")
            }
            guard consentPurposes.contains(purpose) else {
                return Rejection(
                    .unknownEnumValue, "metadata.purpose must be one of \(consentPurposes.joined(separator: ", "))")
            }
            return nil
        case "search.performed":
            if let raw = rawQueryFields.first(where: { value($0) != nil }) {
                return Rejection(
                    .piiViolation, "metadata.\(raw) is a raw search query; send metadata.query_hash (SHA-256) instead")
            }
            guard case .string(let hash)? = value("query_hash") else {
                return Rejection(.missingField, "a search.performed needs metadata.query_hash (SHA-256, 64 hex digits)")
            }
            guard hash.utf8.count == 64, hash.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) })
            else {
                return Rejection(.invalidValue, "metadata.query_hash must be 64 lowercase hex digits (SHA-256)")
            }
            return checkList(value("result_entity_ids"), "result_entity_ids") { canonicalUUID($0) != nil }
        case "contact.updated":
            guard let fields = value("changed_fields") else {
                return Rejection(.missingField, "a contact.updated needs metadata.changed_fields (the fields' names)")
            }
            return checkList(fields, "changed_fields") { !$0.isEmpty && $0.utf8.count <= maxNameLength }
        default:
            return nil
        }
    }

    /// The optional subject (`subject_type`, `subject_id`) a page view or an intent names.
    static func checkSubject(_ eventType: String, _ value: (String) -> JSONValue?) -> Rejection? {
        switch (value("subject_type"), value("subject_id")) {
        case (nil, nil): return nil
        case (.string(let type)?, .string(let id)?):
            guard subjectTypes.contains(type) else {
                return Rejection(
                    .unknownEnumValue,
                    "metadata.subject_type must be one of \(subjectTypes.joined(separator: ", "))")
            }
            guard canonicalUUID(id) != nil else {
                return Rejection(.invalidUUID, "metadata.subject_id must be a UUID")
            }
            return nil
        case (nil, _?), (_?, nil):
            return Rejection(
                .missingField,
                "\(eventType == "page.viewed" ? "a" : "an") \(eventType) names its subject with both "
                    + "metadata.subject_type and subject_id")
        default:
            return Rejection(.wrongType, "metadata.subject_type and subject_id must be strings")
        }
    }

    /// Seed 003's context, on any business event when present.
    static func checkContext(_ value: (String) -> JSONValue?) -> Rejection? {
        if let tier = value("tier") {
            guard case .number(let text) = tier, let number = Int(text), tiers.contains(number) else {
                return Rejection(.invalidValue, "metadata.tier must be an integer from 1 to 4")
            }
        }
        if let department = value("department") {
            guard case .string(let text) = department, !text.isEmpty, text.utf8.count <= 255 else {
                return Rejection(.invalidValue, "metadata.department must be a non-empty string of at most 255 bytes")
            }
        }
        if let personal = value("personalContext") {
            guard case .bool = personal else {
                return Rejection(.wrongType, "metadata.personalContext must be true or false")
            }
        }
        if let intent = value("userIntent") {
            guard case .string(let text) = intent, userIntents.contains(text) else {
                return Rejection(
                    .unknownEnumValue, "metadata.userIntent must be one of \(userIntents.joined(separator: ", "))")
            }
        }
        return nil
    }

    /// An array of at most `maxListItems` strings, each accepted by `valid`.
    static func checkList(_ list: JSONValue?, _ key: String, _ valid: (String) -> Bool) -> Rejection? {
        guard let list else { return nil }
        guard case .array(let items) = list else { return Rejection(.wrongType, "metadata.\(key) must be an array") }
        guard items.count <= maxListItems else {
            return Rejection(.invalidValue, "metadata.\(key) holds at most \(maxListItems) items")
        }
        for item in items {
            guard case .string(let text) = item, valid(text) else {
                return Rejection(.invalidValue, "metadata.\(key) holds an item that is not a valid entry")
            }
        }
        return nil
    }
}

/// The purposes a consent event names, each enforced per person (docs/privacy.md#consent).
public enum ConsentPurpose: String, Sendable, CaseIterable {
    case inContextInsights = "in_context_insights"
    case behavioralProfile = "behavioral_profile"
    case analytics
}

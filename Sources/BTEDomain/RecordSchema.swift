/// The immutable logs that ingest appends to.
public enum LogTable: String, CaseIterable, Sendable, Comparable {
    case businessEvents = "core.business_events"
    case userActions = "core.user_actions"
    case interactionEvents = "core.interaction_events"
    case intentEvents = "agent.intent_events"
    case chatEvents = "agent.chat_events"

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    /// Conversational logs (the intent topic's): reject messages about their rows quote no
    /// value of the row, not even its id.
    public var rejectsQuoteNoValues: Bool { self == .intentEvents || self == .chatEvents }
}

/// The input topics and which records each carries.
public enum InputKind: String, CaseIterable, Sendable {
    case interaction = "bte.interaction-events.v1"
    case business = "bte.business-events.v1"
    case intent = "bte.intent-events.v1"

    /// Record types allowed on this topic; the first is assumed when `record_type` is absent
    /// (interaction events only).
    public var schemas: [RecordSchema] {
        switch self {
        case .interaction: return [Schemas.interactionEvent]
        case .business: return [Schemas.businessEvent, Schemas.userAction]
        case .intent: return [Schemas.intentEvent, Schemas.chatEvent]
        }
    }

    var recordTypeRequired: Bool { self != .interaction }

    /// Whether reject messages may quote the offending value. Intent-topic rejects are kept
    /// without their payload (conversational data), so their messages name the field and
    /// what is wrong with it, never any part of its value.
    var rejectsQuoteValues: Bool { self != .intent }
}

/// A field's JSON type and what it becomes in its column.
public enum FieldKind: Sendable, Equatable {
    case uuid
    case text(maxLength: Int)
    case enumeration([String])
    case timestamp
    case bool
    case int32
    /// A JSON object, stored as jsonb.
    case object
    /// A JSON array, stored as jsonb.
    case array
    /// A lowercase hex digest of the given length.
    case hexDigest(length: Int)

    public var sqlType: String {
        switch self {
        case .uuid: return "uuid"
        case .text, .enumeration, .hexDigest: return "text"
        case .timestamp: return "timestamptz"
        case .bool: return "boolean"
        case .int32: return "integer"
        case .object, .array: return "jsonb"
        }
    }
}

public struct FieldSpec: Sendable, Equatable {
    public let name: String
    public let kind: FieldKind
    public let required: Bool
    /// Stored when the field is absent (column text form).
    public let defaultValue: String?

    public init(_ name: String, _ kind: FieldKind, required: Bool = false, default defaultValue: String? = nil) {
        self.name = name
        self.kind = kind
        self.required = required
        self.defaultValue = defaultValue
    }
}

/// One record type: its fields in column order and the log it goes to.
public struct RecordSchema: Sendable {
    public let recordType: String
    public let table: LogTable
    /// The field that identifies the record; duplicates are detected on it.
    public let idField: String
    /// The field that partitions and orders the log.
    public let timestampField: String
    public let fields: [FieldSpec]
    /// A cross-field rule, checked after every field is valid.
    let check: (@Sendable ([String: JSONValue]) -> Rejection?)?
    /// Fields that must never arrive, not even as unknown extras at any depth (raw personal
    /// data); lowercase, matched in any letter case.
    var forbiddenFields: [String] = []
    /// A personal-data rule, checked before anything else so that `pii_violation` wins over
    /// any other fault of the same record.
    var privacyCheck: (@Sendable ([String: JSONValue]) -> Rejection?)? = nil
    /// Known fields that have no column of their own: checked like a column, stored as they came
    /// among the extra fields (the log derives what it needs from them).
    public var extraFields: [FieldSpec] = []

    /// Conversational records: their unknown fields are scanned for personal data
    /// (`PIIGuard.checkUnknownFields`) before anything else is checked.
    var guardsPersonalData: Bool { !forbiddenFields.isEmpty }

    /// Columns that every log has after the record's own fields, in order.
    public static let provenanceColumns = [
        "extra", "content_hash", "source_topic", "source_partition", "source_offset",
    ]

    public var columnNames: [String] { fields.map(\.name) + RecordSchema.provenanceColumns }

    public static func forTable(_ table: LogTable) -> RecordSchema {
        Schemas.all.first { $0.table == table } ?? Schemas.businessEvent
    }
}

/// The record types of the input topics (docs/producers.md).
public enum Schemas {
    static let shortText = FieldKind.text(maxLength: 255)

    /// Business event types (docs/producers.md); the part before the dot is the entity type.
    public static let businessEventTypes = [
        "recommendation.given", "recommendation.acted", "recommendation.dismissed",
        "workflow.started", "workflow.completed", "workflow.abandoned",
        "page.viewed",
        "deal.created", "deal.stage_changed", "deal.won", "deal.lost",
        "order.created", "contact.engaged", "contact.updated",
        "search.performed", "intent.resolved", "consent.granted", "consent.withdrawn",
        "insight.feedback",
        "control.changed", "incident.started", "incident.resolved",
        "experiment.assigned",
    ]
    public static let entityTypes = [
        "recommendation", "workflow", "page", "deal", "order", "contact", "insight", "control", "incident",
        "experiment", "search", "intent", "consent",
    ]
    /// The controls a `control.changed` may set (metadata keys), each with its range.
    public static let controlRanges: [(name: String, range: ClosedRange<Double>)] = [
        ("rollout_pct", 0...1), ("promo_voltage", 0...1), ("price_index", 0.8...1.2), ("copy_score", 0...1),
    ]
    /// The largest money amount or value in metadata, in absolute value: a trillion in the
    /// workspace's currency. A bound far from float8's limits, so the sums the computations and
    /// the KPI reads take of such numbers stay finite.
    public static let maxMoney: Double = 1e12
    /// Metadata numbers the computations sum, by the event types they are read from: each one,
    /// when present and not null, a finite JSON number within its range (`invalid_value`).
    public static let summedMetadata: [(eventTypes: [String], key: String, range: ClosedRange<Double>)] = [
        (["order.created", "deal.created", "deal.stage_changed", "deal.won", "deal.lost"], "amount", 0...maxMoney),
        (["recommendation.given"], "expected_value", -maxMoney...maxMoney),
        (["recommendation.acted"], "realized_value", -maxMoney...maxMoney),
    ]
    /// `metadata.arm` of an `experiment.assigned`.
    public static let experimentArms = ["control", "treatment"]
    /// `metadata.verdict` of an `insight.feedback`.
    /// `"timestamp_stamped": true` marks a timestamp stamped by the collecting API on receipt;
    /// a record sent again under the same id with another such stamp is a re-delivery.
    public static let stampedTimestampField = "timestamp_stamped"
    /// `impression` (an in-context delivery was shown) and `clicked` (it was opened) measure the
    /// deliveries; the others are opinions.
    public static let feedbackVerdicts = ["useful", "not_useful", "acted", "dismissed", "impression", "clicked"]
    public static let sources = ["hubspot", "shopify", "businesscentral", "platform"]
    public static let interactionTypes = [
        "tap", "double_tap", "long_press", "click", "double_click", "expand", "collapse", "pin", "unpin",
        "drag", "drop", "swipe", "scroll", "hover", "focus", "dismiss", "share", "action",
    ]
    public static let capsuleTypes = ["task", "workflow", "alert", "status", "decision"]
    public static let deviceTypes = ["web", "ios", "android", "desktop"]
    public static let severities = ["debug", "info", "warning", "error", "critical"]
    public static let interactionTargets = ["capsule", "action", "component"]

    public static let businessEvent = RecordSchema(
        recordType: "business_event", table: .businessEvents, idField: "event_id", timestampField: "timestamp",
        fields: [
            FieldSpec("event_id", .uuid, required: true),
            FieldSpec("event_type", .enumeration(businessEventTypes), required: true),
            FieldSpec("entity_type", .enumeration(entityTypes), required: true),
            FieldSpec("entity_id", .uuid, required: true),
            FieldSpec("workspace_id", .uuid, required: true),
            FieldSpec("sub_vertical_id", .uuid, required: true),
            FieldSpec("actor_user_id", .uuid, required: true),
            FieldSpec("timestamp", .timestamp, required: true),
            FieldSpec("metadata", .object, default: "{}"),
            FieldSpec("source", .enumeration(sources)),
        ],
        check: { record in
            guard case .string(let eventType) = record["event_type"],
                case .string(let entityType) = record["entity_type"]
            else { return nil }
            let prefix = eventType.split(separator: ".").first.map(String.init) ?? ""
            guard prefix == entityType else {
                return Rejection(
                    .invalidValue,
                    "entity_type \"\(entityType)\" does not match event_type \"\(eventType)\" (expected \"\(prefix)\")")
            }
            if let rejection = checkSummedNumbers(eventType, record["metadata"]) { return rejection }
            if let rejection = ContextVocabulary.check(eventType, record["metadata"]) { return rejection }
            if eventType == "control.changed" { return checkControls(record["metadata"]) }
            if eventType == "experiment.assigned" {
                guard case .string(let arm)? = record["metadata"]?["arm"] else {
                    return Rejection(.missingField, "an experiment.assigned needs metadata.arm (control or treatment)")
                }
                guard experimentArms.contains(arm) else {
                    return Rejection(
                        .unknownEnumValue, "metadata.arm must be one of \(experimentArms.joined(separator: ", "))")
                }
            }
            if eventType == "insight.feedback" {
                guard case .string(let verdict)? = record["metadata"]?["verdict"] else {
                    return Rejection(.missingField, "an insight.feedback needs metadata.verdict")
                }
                guard feedbackVerdicts.contains(verdict) else {
                    return Rejection(
                        .unknownEnumValue,
                        "metadata.verdict must be one of \(feedbackVerdicts.joined(separator: ", "))")
                }
                switch record["metadata"]?["delivery_id"] {
                case nil, .null?: break
                case .string(let id)? where canonicalUUID(id) != nil: break
                default: return Rejection(.invalidUUID, "metadata.delivery_id must be the UUID of a delivery")
                }
            }
            return nil
        })

    public static let userAction = RecordSchema(
        recordType: "user_action", table: .userActions, idField: "action_id", timestampField: "timestamp",
        fields: [
            FieldSpec("action_id", .uuid, required: true),
            FieldSpec("action_type", shortText, required: true),
            FieldSpec("workspace_id", .uuid, required: true),
            FieldSpec("actor_user_id", .uuid, required: true),
            FieldSpec("timestamp", .timestamp, required: true),
            FieldSpec("metadata", .object, default: "{}"),
        ],
        check: nil)

    public static let interactionEvent = RecordSchema(
        recordType: "interaction_event", table: .interactionEvents, idField: "event_id", timestampField: "timestamp",
        fields: [
            FieldSpec("event_id", .uuid, required: true),
            FieldSpec("timestamp", .timestamp, required: true),
            FieldSpec("event_type", .enumeration(interactionTypes), required: true),
            FieldSpec("severity", .enumeration(severities), default: "info"),
            FieldSpec("user_id", shortText, required: true),
            FieldSpec("session_id", shortText, required: true),
            FieldSpec("device_id", shortText),
            FieldSpec("device_type", .enumeration(deviceTypes)),
            FieldSpec("capsule_id", shortText),
            FieldSpec("capsule_type", .enumeration(capsuleTypes)),
            FieldSpec("capsule_category", shortText),
            FieldSpec("interaction_target", .enumeration(interactionTargets)),
            FieldSpec("action_id", shortText),
            FieldSpec("component_id", shortText),
            FieldSpec("duration_ms", .int32),
            FieldSpec("time_since_last_interaction_ms", .int32),
            FieldSpec("interaction_data", .object),
            FieldSpec("success", .bool, default: "t"),
            FieldSpec("error_message", .text(maxLength: 4096)),
            FieldSpec("context", .object),
        ],
        check: nil,
        // The user's workspace: a user is (workspace_id, user_id); none means the default workspace.
        extraFields: [FieldSpec("workspace_id", .uuid)])

    public static let intentEvent = RecordSchema(
        recordType: "intent_event", table: .intentEvents, idField: "event_id", timestampField: "ts",
        fields: [
            FieldSpec("event_id", .uuid, required: true),
            FieldSpec("ts", .timestamp, required: true),
            FieldSpec("session_id", .uuid, required: true),
            FieldSpec("actor_id", shortText, required: true),
            FieldSpec("entrypoint", .enumeration(["chat", "mcp", "repl", "execute"]), required: true),
            FieldSpec("utterance_hash", .hexDigest(length: 64), required: true),
            FieldSpec("utterance_preview", .text(maxLength: 4096)),
            FieldSpec("scope", shortText),
            FieldSpec("subject_ref_type", .enumeration(["entity", "case", "none"])),
            FieldSpec("subject_ref_id", .uuid),
            FieldSpec(
                "semreg_mode", .enumeration(["applied", "deny_all", "unavailable", "fail_open"]), required: true),
            FieldSpec("semreg_denied_verbs", .array),
            FieldSpec("verb_candidates_pre", .array),
            FieldSpec("verb_candidates_post", .array),
            FieldSpec("chosen_verb_fqn", shortText),
            FieldSpec("selection_source", .enumeration(["discovery", "user_choice", "semreg", "macro"])),
            FieldSpec("forced_verb_fqn", shortText),
            FieldSpec("outcome", shortText, required: true),
            FieldSpec("dsl_hash", shortText),
            FieldSpec("run_sheet_entry_id", .uuid),
            FieldSpec("macro_semreg_checked", .bool, default: "f"),
            FieldSpec("macro_denied_verbs", .array),
            FieldSpec("error_code", shortText),
            FieldSpec("prompt_version", shortText),
        ],
        check: nil,
        forbiddenFields: PIIGuard.rawUtteranceFields,
        privacyCheck: { PIIGuard.checkPreview($0["utterance_preview"], field: "utterance_preview") })

    public static let chatEvent = RecordSchema(
        recordType: "chat_event", table: .chatEvents, idField: "event_id", timestampField: "ts",
        fields: [
            FieldSpec("event_id", .uuid, required: true),
            FieldSpec("ts", .timestamp, required: true),
            FieldSpec("session_id", .uuid, required: true),
            FieldSpec("turn_id", shortText),
            FieldSpec("assistant_message_hash", .hexDigest(length: 64)),
            FieldSpec("assistant_message_preview", .text(maxLength: 4096)),
            FieldSpec("intent_event_id", .uuid),
        ],
        check: nil,
        forbiddenFields: PIIGuard.rawUtteranceFields + ["assistant_message"],
        privacyCheck: { PIIGuard.checkPreview($0["assistant_message_preview"], field: "assistant_message_preview") })

    public static let all = [businessEvent, userAction, interactionEvent, intentEvent, chatEvent]
}

extension Schemas {
    /// A number a computation sums must be finite and bounded: a 1e400 reads as infinity, and
    /// one such row would overflow every sum it is in.
    static func checkSummedNumbers(_ eventType: String, _ metadata: JSONValue?) -> Rejection? {
        for (types, key, range) in summedMetadata where types.contains(eventType) {
            guard let value = metadata?[key], value != .null else { continue }
            guard case .number(let text) = value, let number = Double(text), number.isFinite,
                range.contains(number)
            else {
                return Rejection(
                    .invalidValue,
                    "metadata.\(key) of a \(eventType) must be a finite number within "
                        + "[\(range.lowerBound), \(range.upperBound)]")
            }
        }
        return nil
    }

    /// A `control.changed` sets one or more controls, each a finite number inside its range: a
    /// value the models would fit must never be stored out of range.
    static func checkControls(_ metadata: JSONValue?) -> Rejection? {
        guard case .object(let members)? = metadata else {
            return Rejection(.missingField, "a control.changed needs metadata with at least one control")
        }
        var found = false
        for (name, range) in controlRanges {
            guard let value = members.last(where: { $0.key == name })?.value else { continue }
            found = true
            guard case .number(let text) = value, let number = Double(text), number.isFinite else {
                return Rejection(.invalidValue, "metadata.\(name) must be a finite number")
            }
            guard range.contains(number) else {
                return Rejection(
                    .invalidValue,
                    "metadata.\(name) must be within [\(range.lowerBound), \(range.upperBound)]")
            }
        }
        guard found else {
            return Rejection(
                .missingField,
                "a control.changed needs at least one of "
                    + "\(controlRanges.map(\.name).joined(separator: ", ")) in metadata")
        }
        return nil
    }
}

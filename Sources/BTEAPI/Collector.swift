import BTECompute
import BTEDomain
import Foundation
import Kafka

/// What the collect endpoints make of a body, before anything is produced: the same validation
/// as ingest, plus the key's workspace. Pure, so its rules are tested without servers.
public struct Collector: Sendable {
    public static let maxBodyBytes = 1 << 20
    public static let maxRecords = 500

    public let validator: RecordValidator
    public let topicPrefix: String

    public init(limits: ValidationLimits, topicPrefix: String) {
        validator = RecordValidator(limits: limits)
        self.topicPrefix = topicPrefix
    }

    public struct Rejected: Sendable, Equatable {
        public var index: Int
        public var code: String
        /// Ingest's one-line message for the reject (it quotes no personal value).
        public var message: String = ""
    }

    public struct Batch: Sendable {
        public var messages: [KafkaOutgoingMessage] = []
        public var rejected: [Rejected] = []
    }

    /// `{"events":[record…]}`: each record validated on its own; a bad one never fails the rest.
    /// Feedback on insights (`insight.feedback`) is an admin's to give, as on its own endpoint.
    public func events(body: [UInt8], workspaceID: String, mayGiveFeedback: Bool) -> Result<Batch, APIError> {
        guard let parsed = try? JSONParser.parse(body), case .object = parsed,
            case .array(let records)? = parsed["events"]
        else {
            return .failure(APIError(.badRequest, "invalid_body", "the body is not {\"events\": [record, …]}"))
        }
        guard records.count <= Self.maxRecords else {
            return .failure(
                APIError(
                    .contentTooLarge, "too_many_records",
                    "\(records.count) records; at most \(Self.maxRecords) a request"))
        }
        var batch = Batch()
        for (index, record) in records.enumerated() {
            if !mayGiveFeedback, record["event_type"] == .string("insight.feedback") {
                batch.rejected.append(
                    Rejected(
                        index: index, code: "insufficient_scope",
                        message: "insight.feedback needs a key with scope admin"))
                continue
            }
            switch message(record, workspaceID: workspaceID) {
            case .success(let message): batch.messages.append(message)
            case .failure(let rejection):
                batch.rejected.append(Rejected(index: index, code: rejection.code.rawValue, message: rejection.message))
            }
        }
        return .success(batch)
    }

    /// One record: its kind from `record_type`, the key's workspace checked (or stamped on an
    /// interaction event, which has none), validated as ingest would, addressed as producers do.
    public func message(_ record: JSONValue, workspaceID: String) -> Result<KafkaOutgoingMessage, Rejection> {
        guard case .object(var members) = record else { return .failure(Rejection(.notAnObject, "not an object")) }
        guard case .string(let recordType)? = record["record_type"],
            let kind = InputKind.allCases.first(where: { $0.schemas.contains { $0.recordType == recordType } })
        else {
            return .failure(Rejection(.unknownRecordType, "record_type names no known record type"))
        }
        switch record["workspace_id"] {
        case .string(let own)?:
            guard own.lowercased() == workspaceID.lowercased() else {
                return .failure(Rejection(.workspaceMismatch, "workspace_id is not the key's workspace"))
            }
        case nil, .null?:
            // An interaction event without one would belong to the default workspace, not the key's.
            if kind == .interaction {
                members.removeAll { $0.key == "workspace_id" }
                members.append((key: "workspace_id", value: .string(workspaceID.lowercased())))
            }
        default: break  // the validator refuses a workspace_id of another type
        }
        let object = JSONValue.object(members)
        let keyField = kind == .interaction ? "user_id" : kind == .business ? "workspace_id" : "session_id"
        var key: [UInt8]?
        if case .string(let text)? = object[keyField] { key = Array(text.utf8) }
        let value = object.canonicalBytes()
        switch validator.validate(kind: kind, key: key ?? Array(workspaceID.utf8), value: value) {
        case .success:
            return .success(
                KafkaOutgoingMessage(
                    topic: kind.name(prefix: topicPrefix), key: key ?? Array(workspaceID.utf8), value: value))
        case .failure(let rejection):
            return .failure(rejection)
        }
    }

    /// Seed 001's interaction log request: `event_id` and `timestamp` filled in when absent (the
    /// id from `Idempotency-Key` when given, so a retried request is stored once).
    public func interaction(
        body: [UInt8], workspaceID: String, idempotencyKey: String?, now: Date = Date()
    ) -> Result<(message: KafkaOutgoingMessage, record: JSONValue), APIError> {
        guard let parsed = try? JSONParser.parse(body), case .object(var members) = parsed else {
            return .failure(APIError(.badRequest, "invalid_body", "the body is not a JSON object"))
        }
        if parsed["record_type"] == nil { members.append((key: "record_type", value: .string("interaction_event"))) }
        if parsed["event_id"] == nil {
            let id =
                idempotencyKey.map { UUIDv5.make(name: "api|interaction|\(workspaceID.lowercased())|\($0)") }
                ?? UUID().uuidString.lowercased()
            members.append((key: "event_id", value: .string(id)))
        }
        if parsed["timestamp"] == nil {
            let micros = Int64(now.timeIntervalSince1970 * 1_000_000)
            members.append((key: "timestamp", value: .string(Timestamp(microseconds: micros).rfc3339)))
            members.append((key: Schemas.stampedTimestampField, value: .bool(true)))
        }
        let record = JSONValue.object(members)
        switch message(record, workspaceID: workspaceID) {
        case .success(let message): return .success((message, record))
        case .failure(let rejection):
            return .failure(APIError(.badRequest, rejection.code.rawValue, rejection.message))
        }
    }

    /// An `insight.feedback` business event for a stored insight of the key's workspace, from
    /// `{"verdict": …, "user_id": …}`. Each request is an opinion of its own (the latest counts);
    /// with an `Idempotency-Key` its id is the key's, so a retry is the same event re-delivered.
    public func feedback(
        body: [UInt8], insightID: String, insightType: String, workspaceID: String, subVerticalID: String,
        idempotencyKey: String? = nil, now: Date = Date()
    ) -> Result<(message: KafkaOutgoingMessage, eventID: String, verdict: String), APIError> {
        guard let parsed = try? JSONParser.parse(body), case .object = parsed else {
            return .failure(APIError(.badRequest, "invalid_body", "the body is not a JSON object"))
        }
        guard case .string(let verdict)? = parsed["verdict"] else {
            return .failure(APIError(.badRequest, "missing_field", "verdict is required"))
        }
        guard Schemas.feedbackVerdicts.contains(verdict) else {
            return .failure(
                APIError(
                    .badRequest, "unknown_enum_value",
                    "verdict must be one of \(Schemas.feedbackVerdicts.joined(separator: ", "))"))
        }
        guard case .string(let user)? = parsed["user_id"] else {
            return .failure(APIError(.badRequest, "missing_field", "user_id is required"))
        }
        // The in-context delivery the opinion is about, when it came from one.
        var delivery: String?
        switch parsed["delivery_id"] {
        case nil, .null?: break
        case .string(let text)? where canonicalUUID(text) != nil: delivery = canonicalUUID(text)
        default: return .failure(APIError(.badRequest, "invalid_uuid", "delivery_id must be a UUID"))
        }
        let workspace = workspaceID.lowercased()
        let eventID =
            idempotencyKey.map { UUIDv5.make(name: "api|insight.feedback|\(workspace)|\($0)") }
            ?? UUID().uuidString.lowercased()
        let record = JSONValue.object([
            (key: "record_type", value: .string("business_event")),
            (key: "event_id", value: .string(eventID)),
            (key: "event_type", value: .string("insight.feedback")),
            (key: "entity_type", value: .string("insight")),
            (key: "entity_id", value: .string(insightID)),
            (key: "workspace_id", value: .string(workspace)),
            (key: "sub_vertical_id", value: .string(subVerticalID)),
            (key: "actor_user_id", value: .string(user)),
            (
                key: "timestamp",
                value: .string(Timestamp(microseconds: Int64(now.timeIntervalSince1970 * 1_000_000)).rfc3339)
            ),
            (
                key: "metadata",
                value: .object(
                    [(key: "verdict", value: .string(verdict)), (key: "insight_type", value: .string(insightType))]
                        + (delivery.map { [(key: "delivery_id", value: JSONValue.string($0))] } ?? []))
            ),
            (key: "source", value: .string("platform")),
            (key: Schemas.stampedTimestampField, value: .bool(true)),
        ])
        switch message(record, workspaceID: workspace) {
        case .success(let message): return .success((message, eventID, verdict))
        case .failure(let rejection): return .failure(APIError(.badRequest, rejection.code.rawValue, rejection.message))
        }
    }
}

/// A record that passed validation, ready to append: one text value per column of its log.
public struct ValidRecord: Sendable {
    public let table: LogTable
    /// Lowercase canonical id (the schema's `idField`).
    public let id: String
    public let timestamp: Timestamp
    /// Column values in text form, in `schema.fields` order; `nil` is SQL NULL.
    public let values: [String?]
    /// Unknown fields, kept as a canonical JSON object; `nil` when there were none.
    public let extra: String?
    /// Fingerprint of the record's normalized content: its column values and unknown fields.
    /// The same event sent again, even re-serialized (key order, whitespace, number spelling),
    /// has the same fingerprint.
    public let contentHash: Int64
    /// The schema's `extraFields` present in the record, in column text form (a UUID lowercased).
    public var extraValues: [String: String] = [:]

    public var schema: RecordSchema { RecordSchema.forTable(table) }

    /// The workspace of the user an interaction event is about (`UserKey.defaultWorkspace` when
    /// it names none); for other records their `workspace_id` column, if they have one.
    public var workspaceID: String? {
        if table == .interactionEvents { return extraValues["workspace_id"] ?? UserKey.defaultWorkspace }
        return schema.fields.firstIndex { $0.name == "workspace_id" }.flatMap { values[$0] }
    }

    /// The person a record is about, (workspace, user): an interaction event's `user_id`, a
    /// business event's or user action's `actor_user_id` (a UUID in lowercase, as privacy requests
    /// name it). Nil for intent and chat events, which name no workspace.
    public var person: UserKey? {
        let field: String
        switch table {
        case .interactionEvents: field = "user_id"
        case .businessEvents, .userActions: field = "actor_user_id"
        case .intentEvents, .chatEvents: return nil
        }
        guard let workspace = workspaceID, let index = schema.fields.firstIndex(where: { $0.name == field }),
            index < values.count, let user = values[index]
        else { return nil }
        return UserKey(workspaceID: workspace, userID: canonicalUUID(user) ?? user)
    }

    /// What makes two records one event: the id within its workspace (one workspace's id never
    /// blocks another's); for intent and chat events, which name no workspace, the id alone.
    public var identity: String { workspaceID.map { "\($0)/\(id)" } ?? id }
}

/// Limits on what a message may be. Defaults suit interaction telemetry; all are configurable.
public struct ValidationLimits: Sendable {
    public var maxMessageBytes: Int = 262_144
    public var maxDepth: Int = 32
    /// Largest canonical size of one JSON field (metadata, context, …) or of the extra fields.
    public var maxJSONFieldBytes: Int = 65_536

    public init() {}
}

/// Decodes and validates input messages. Pure: the same bytes always give the same answer.
public struct RecordValidator: Sendable {
    public let limits: ValidationLimits

    public init(limits: ValidationLimits = ValidationLimits()) {
        self.limits = limits
    }

    public func validate(kind: InputKind, key: [UInt8]?, value: [UInt8]?) -> Result<ValidRecord, Rejection> {
        guard let value else { return .failure(Rejection(.tombstone, "message has a null value (tombstone)")) }
        if let key, key.isEmpty { return .failure(Rejection(.emptyKey, "message key is empty")) }
        if value.count > limits.maxMessageBytes {
            return .failure(
                Rejection(.messageTooLarge, "message is \(value.count) bytes; the limit is \(limits.maxMessageBytes)"))
        }
        let parsed: JSONValue
        do {
            parsed = try JSONParser.parse(value, maxDepth: limits.maxDepth)
        } catch {
            switch error {
            case .invalidUTF8: return .failure(Rejection(.invalidUTF8, "message is not valid UTF-8"))
            case .nulByte: return .failure(Rejection(.nulByte, "message contains a NUL character"))
            case .tooDeep(let limit):
                return .failure(Rejection(.tooDeeplyNested, "JSON nesting exceeds \(limit) levels"))
            case .syntax(let message, let offset):
                // The parser's messages are fixed texts, except that a duplicate member is named.
                let shown =
                    kind.rejectsQuoteValues || !message.hasPrefix(JSONParser.duplicateMember)
                    ? message : JSONParser.duplicateMember
                return .failure(Rejection(.invalidJSON, "\(shown) at byte \(offset)"))
            }
        }
        return validate(kind: kind, json: parsed)
    }

    public func validate(kind: InputKind, json: JSONValue) -> Result<ValidRecord, Rejection> {
        guard case .object(let members) = json else {
            return .failure(Rejection(.notAnObject, "message is a JSON \(json.typeName), not an object"))
        }
        var recordType: JSONValue?
        for member in members where member.key == "record_type" { recordType = member.value }

        let schema: RecordSchema
        switch recordType {
        case .string(let name)?:
            guard let match = kind.schemas.first(where: { $0.recordType == name }) else {
                let allowed = kind.schemas.map(\.recordType).joined(separator: ", ")
                let given = kind.rejectsQuoteValues ? " \"\(name)\"" : ""
                return .failure(Rejection(.unknownRecordType, "record_type\(given) is not one of: \(allowed)"))
            }
            schema = match
        case nil where !kind.recordTypeRequired:
            schema = kind.schemas[0]
        case nil:
            return .failure(Rejection(.missingField, "record_type is required"))
        case let other?:
            return .failure(Rejection(.wrongType, "record_type must be a string, not \(other.typeName)"))
        }

        // One pass over the members: each lands in its field's slot or among the unknown ones.
        let specs = schema.fields
        var raw = [JSONValue?](repeating: nil, count: specs.count)
        var unknown: [(key: String, value: JSONValue)] = []
        for member in members {
            if let index = specs.firstIndex(where: { $0.name == member.key }) {
                raw[index] = member.value
            } else if member.key != "record_type" {
                unknown.append(member)
            }
        }

        // Personal data first: whatever else is wrong with the record, it is refused as such.
        if schema.guardsPersonalData,
            let rejection = PIIGuard.checkUnknownFields(unknown, forbidden: schema.forbiddenFields)
        {
            return .failure(rejection)
        }
        /// Runs a schema rule over the fields present, by name.
        func run(_ rule: (@Sendable ([String: JSONValue]) -> Rejection?)?) -> Rejection? {
            guard let rule else { return nil }
            var named: [String: JSONValue] = [:]
            for (index, spec) in specs.enumerated() { if let value = raw[index] { named[spec.name] = value } }
            return rule(named)
        }
        if let rejection = run(schema.privacyCheck) { return .failure(rejection) }

        var values: [String?] = []
        values.reserveCapacity(specs.count)
        var id = ""
        var timestamp = Timestamp(microseconds: 0)
        for (index, spec) in specs.enumerated() {
            guard let value = raw[index], value != .null else {
                if spec.required {
                    return .failure(Rejection(.missingField, "\(spec.name) is required"))
                }
                values.append(spec.defaultValue)
                continue
            }
            switch columnValue(value, spec, quote: kind.rejectsQuoteValues) {
            case .failure(let rejection): return .failure(rejection)
            case .success(let converted):
                values.append(converted.text)
                if spec.name == schema.idField { id = converted.text }
                if let instant = converted.timestamp, spec.name == schema.timestampField { timestamp = instant }
            }
        }
        var extraValues: [String: String] = [:]
        for spec in schema.extraFields {
            guard let value = unknown.first(where: { $0.key == spec.name })?.value, value != .null else { continue }
            switch columnValue(value, spec, quote: kind.rejectsQuoteValues) {
            case .failure(let rejection): return .failure(rejection)
            case .success(let converted): extraValues[spec.name] = converted.text
            }
        }
        if let rejection = run(schema.check) { return .failure(rejection) }
        // A timestamp the collecting API stamped on receipt is not part of what the event is: a
        // retry of the request, stamped anew under the same id, is the same event re-delivered.
        var fingerprinted = values
        switch unknown.first(where: { $0.key == Schemas.stampedTimestampField })?.value {
        case nil, .null?, .bool(false)?: break
        case .bool(true)?:
            if let index = specs.firstIndex(where: { $0.name == schema.timestampField }) { fingerprinted[index] = nil }
        default:
            return .failure(Rejection(.wrongType, "\(Schemas.stampedTimestampField) must be true or false"))
        }

        var extra: String?
        if !unknown.isEmpty {
            let bytes = JSONValue.object(unknown).canonicalBytes()
            if bytes.count > limits.maxJSONFieldBytes {
                return .failure(
                    Rejection(
                        .metadataTooLarge,
                        "unknown fields take \(bytes.count) bytes; the limit is \(limits.maxJSONFieldBytes)"))
            }
            extra = String(decoding: bytes, as: UTF8.self)
        }
        return .success(
            ValidRecord(
                table: schema.table, id: id, timestamp: timestamp, values: values, extra: extra,
                contentHash: contentFingerprint(recordType: schema.recordType, values: fingerprinted, extra: extra),
                extraValues: extraValues))
    }

    /// FNV-1a over the normalized values, with a separator byte that can't occur in them
    /// (NUL is rejected) and a marker for NULL.
    private func contentFingerprint(recordType: String, values: [String?], extra: String?) -> Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        @inline(__always) func mix(_ byte: UInt8) {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        @inline(__always) func mix(_ value: String?) {
            mix(0)
            guard var value else {
                mix(1)
                return
            }
            value.withUTF8 { for byte in $0 { mix(byte) } }
        }
        mix(recordType)
        for value in values { mix(value) }
        mix(extra)
        return Int64(bitPattern: hash)
    }

    private struct Converted {
        let text: String
        var timestamp: Timestamp? = nil
        init(_ text: String, timestamp: Timestamp? = nil) {
            self.text = text
            self.timestamp = timestamp
        }
    }

    /// `quote`: whether messages may show (a clipped copy of) the value.
    private func columnValue(_ raw: JSONValue, _ spec: FieldSpec, quote: Bool) -> Result<Converted, Rejection> {
        func shown(_ text: String, _ format: (String) -> String) -> String { quote ? format(clip(text)) : "" }
        func wrongType(_ expected: String) -> Result<Converted, Rejection> {
            .failure(Rejection(.wrongType, "\(spec.name) must be \(expected), not \(raw.typeName)"))
        }
        switch spec.kind {
        case .uuid:
            guard case .string(let text) = raw else { return wrongType("a UUID string") }
            guard let uuid = canonicalUUID(text) else {
                return .failure(Rejection(.invalidUUID, "\(spec.name) is not a UUID\(shown(text) { ": \($0)" })"))
            }
            return .success(Converted(uuid))
        case .text(let maxLength):
            guard case .string(let text) = raw else { return wrongType("a string") }
            if text.isEmpty && spec.required { return .failure(Rejection(.missingField, "\(spec.name) is empty")) }
            // UTF-8 length bounds the scalar count from above: count scalars only when needed.
            if text.utf8.count > maxLength, text.unicodeScalars.count > maxLength {
                return .failure(
                    Rejection(
                        .valueTooLong,
                        "\(spec.name) has \(text.unicodeScalars.count) characters; the limit is \(maxLength)"))
            }
            return .success(Converted(text))
        case .enumeration(let allowed):
            guard case .string(let text) = raw else { return wrongType("a string") }
            guard allowed.contains(text) else {
                return .failure(
                    Rejection(
                        .unknownEnumValue,
                        "\(spec.name)\(shown(text) { " \"\($0)\"" }) is not one of: \(allowed.joined(separator: ", "))")
                )
            }
            return .success(Converted(text))
        case .hexDigest(let length):
            guard case .string(let text) = raw else { return wrongType("a string") }
            let valid =
                text.utf8.count == length && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
            guard valid else {
                return .failure(Rejection(.invalidValue, "\(spec.name) must be \(length) lowercase hex digits"))
            }
            return .success(Converted(text))
        case .timestamp:
            guard case .string(let text) = raw else { return wrongType("an RFC 3339 string") }
            guard let parsed = Timestamp(rfc3339: text) else {
                return .failure(
                    Rejection(
                        .invalidTimestamp,
                        "\(spec.name) is not an RFC 3339 timestamp with a zone\(shown(text) { ": \($0)" })"))
            }
            guard Timestamp.acceptedRange.contains(parsed) else {
                return .failure(
                    Rejection(
                        .timestampOutOfRange,
                        "\(spec.name)\(shown(text) { " \($0)" }) is outside 1970-01-01..2100-01-01"))
            }
            return .success(Converted(parsed.rfc3339, timestamp: parsed))
        case .bool:
            guard case .bool(let flag) = raw else { return wrongType("a boolean") }
            return .success(Converted(flag ? "t" : "f"))
        case .int32:
            guard case .number(let text) = raw else { return wrongType("an integer") }
            guard let number = Int64(text) else { return wrongType("an integer") }
            guard number >= 0, number <= Int64(Int32.max) else {
                return .failure(
                    Rejection(.invalidValue, "\(spec.name)\(shown(text) { " \($0)" }) is outside 0...\(Int32.max)"))
            }
            return .success(Converted(String(number)))
        case .object, .array:
            let isObject = spec.kind == .object
            switch (raw, isObject) {
            case (.object, true), (.array, false): break
            default: return wrongType(isObject ? "an object" : "an array")
            }
            let bytes = raw.canonicalBytes()
            if bytes.count > limits.maxJSONFieldBytes {
                return .failure(
                    Rejection(
                        .metadataTooLarge,
                        "\(spec.name) takes \(bytes.count) bytes; the limit is \(limits.maxJSONFieldBytes)"))
            }
            return .success(Converted(String(decoding: bytes, as: UTF8.self)))
        }
    }
}

private func clip(_ text: String) -> String {
    text.count <= 64 ? text : String(text.prefix(64)) + "…"
}

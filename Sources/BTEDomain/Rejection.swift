/// Why a message was not stored: a stable machine-readable code plus a human message.
public struct Rejection: Error, Equatable, Sendable, CustomStringConvertible {
    public let code: RejectionCode
    public let message: String

    public init(_ code: RejectionCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// The `error_code` of a rejected message. The list is part of the producer contract
/// (docs/producers.md).
public struct RejectionCode: RawRepresentable, Hashable, Sendable, Comparable {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    public static let tombstone = Self(rawValue: "tombstone")
    public static let emptyKey = Self(rawValue: "empty_key")
    public static let messageTooLarge = Self(rawValue: "message_too_large")
    public static let invalidUTF8 = Self(rawValue: "invalid_utf8")
    public static let nulByte = Self(rawValue: "nul_byte")
    public static let invalidJSON = Self(rawValue: "invalid_json")
    public static let tooDeeplyNested = Self(rawValue: "too_deeply_nested")
    public static let notAnObject = Self(rawValue: "not_an_object")
    public static let unknownRecordType = Self(rawValue: "unknown_record_type")
    public static let missingField = Self(rawValue: "missing_field")
    public static let wrongType = Self(rawValue: "wrong_type")
    public static let unknownEnumValue = Self(rawValue: "unknown_enum_value")
    public static let invalidUUID = Self(rawValue: "invalid_uuid")
    public static let invalidTimestamp = Self(rawValue: "invalid_timestamp")
    public static let timestampOutOfRange = Self(rawValue: "timestamp_out_of_range")
    public static let valueTooLong = Self(rawValue: "value_too_long")
    public static let invalidValue = Self(rawValue: "invalid_value")
    public static let metadataTooLarge = Self(rawValue: "metadata_too_large")
    public static let piiViolation = Self(rawValue: "pii_violation")
    /// HTTP API only: the record's `workspace_id` is not the API key's workspace.
    public static let workspaceMismatch = Self(rawValue: "workspace_mismatch")
    /// Same id as a stored event, different content. Nothing is overwritten.
    public static let conflictingDuplicate = Self(rawValue: "conflicting_duplicate")
    /// PostgreSQL refused the row although it passed validation (isolated by bisection).
    public static let storageRejected = Self(rawValue: "storage_rejected")

    public static let all: [RejectionCode] = [
        .tombstone, .emptyKey, .messageTooLarge, .invalidUTF8, .nulByte, .invalidJSON, .tooDeeplyNested, .notAnObject,
        .unknownRecordType, .missingField, .wrongType, .unknownEnumValue, .invalidUUID, .invalidTimestamp,
        .timestampOutOfRange, .valueTooLong, .invalidValue, .metadataTooLarge, .piiViolation, .conflictingDuplicate,
        .storageRejected,
    ]
}

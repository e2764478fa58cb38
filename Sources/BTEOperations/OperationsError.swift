import BTEDomain

/// A refused or failed operations command (`bte replay`, `bte rejects`, `bte status`).
public struct OperationsError: CodedError {
    public enum Code: String, Sendable {
        case invalidTarget = "replay_invalid_target"
        case invalidTopic = "replay_invalid_topic"
        case unknownTopic = "replay_unknown_topic"
        case groupActive = "replay_group_active"
        case unreadable = "replay_offsets_unreadable"
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}

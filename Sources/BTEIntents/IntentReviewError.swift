import BTEDomain

/// A mistake in a review request or a proposal file, with a code for scripts and one line for people.
public struct IntentReviewError: CodedError, Equatable {
    public enum Code: String, Sendable {
        case invalidDuration = "invalid_duration"
        case invalidTimestamp = "invalid_timestamp"
        case invalidProposal = "invalid_proposal"
        case emptyProposal = "empty_proposal"
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}

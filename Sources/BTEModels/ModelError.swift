import BTEDomain

/// Why a model could not be fitted, simulated or evaluated.
public struct ModelError: CodedError, Equatable {
    public enum Code: String, Sendable {
        /// A covariance that must be positive definite is not (numerically).
        case notPositiveDefinite = "model_not_positive_definite"
        /// Too few observations for the parameters asked for.
        case insufficientData = "model_insufficient_data"
        /// Inputs of the wrong shape or outside their domain.
        case invalidInput = "model_invalid_input"
        /// An iterative fit did not reach its tolerance.
        case notConverged = "model_not_converged"
        /// A run that does not exist (or is another workspace's).
        case notFound = "model_run_not_found"
    }
    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// The topics BTE publishes to. Every worker and command names them from here, with the
/// deployment's topic prefix (empty in production) in front.
public enum OutputTopic: String, CaseIterable, Sendable {
    case signals = "bte.signals.v1"
    case behavioralVectors = "bte.behavioral-vectors.v1"
    case insights = "bte.insights.v1"
    case insightDeliveries = "bte.insight-deliveries.v1"
    case deadLetter = "bte.dead-letter.v1"

    /// The topic's name under `prefix`.
    public func name(prefix: String) -> String { prefix + rawValue }
}

extension InputKind {
    /// The topic's name under `prefix`.
    public func name(prefix: String) -> String { prefix + rawValue }
}

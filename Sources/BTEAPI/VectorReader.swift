import BTECompute
import BTEDomain
import BTEStore
import Dispatch
import Foundation
import Synchronization

/// Behavioral vectors computed on request from the logs, read-only, as `bte_reader`; nothing is
/// stored. Reads run on a queue of their own: the reader blocks.
final class VectorReader: Sendable {
    private let reader: SerialClient<HistoryReader>

    init(readerURL: String) {
        reader = SerialClient(
            label: "bte.api.vectors", open: { try HistoryReader(url: readerURL) }, healthy: { $0.isHealthy })
    }

    enum Outcome: Sendable {
        /// The vector's JSON, as the projector would publish it as of `asOf`.
        case vector([UInt8])
        /// The user has no interaction in this workspace in the window.
        case notFound
    }

    func compute(userID: String, workspaceID: String, asOf: Timestamp) async throws -> Outcome {
        try await reader.run { history in
            try history.snapshot { () throws -> Outcome in
                let user = UserKey(workspaceID: workspaceID, userID: userID)
                let thresholds = try history.thresholds()
                let interactions = try history.interactions([user: asOf])
                // A person who withdrew consent to a profile has none, as the projector publishes.
                guard
                    try history.consent(to: .behavioralProfile, of: [user])[user]?.allows(at: asOf.microseconds) ?? true
                else { return .notFound }
                guard let vector = VectorComputer().compute(user: user, interactions: interactions, asOf: asOf)
                else { return .notFound }
                return .vector(
                    vector.json(thresholdsVersion: thresholds.version, computedFrom: vector.totalInteractions))
            }
        }
    }
}

import BTECompute
import BTEDomain
import BTEStore
import Dispatch
import Foundation
import Synchronization

/// Behavioral vectors computed on request from the logs, read-only, as `bte_reader`; nothing is
/// stored. Reads run on a queue of their own: the reader blocks.
final class VectorReader: Sendable {
    private let readerURL: String
    private let queue = DispatchQueue(label: "bte.api.vectors")
    private let reader = Mutex<HistoryReaderBox?>(nil)

    init(readerURL: String) { self.readerURL = readerURL }

    enum Outcome: Sendable {
        /// The vector's JSON, as the projector would publish it as of `asOf`.
        case vector([UInt8])
        /// The workspace's events don't name the user, or the user has no interaction in the window.
        case notFound
    }

    func compute(userID: String, workspaceID: String, asOf: Timestamp) async throws -> Outcome {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { [self] in
                do {
                    let box = try reader.withLock { box -> HistoryReaderBox in
                        if let box, box.reader.isHealthy { return box }
                        let opened = HistoryReaderBox(reader: try HistoryReader(url: readerURL))
                        box = opened
                        return opened
                    }
                    let history = box.reader
                    let outcome = try history.snapshot { () throws -> Outcome in
                        guard try history.user(userID, belongsTo: workspaceID) else { return .notFound }
                        let thresholds = try history.thresholds()
                        let interactions = try history.interactions([userID: asOf])
                        guard
                            let vector = VectorComputer().compute(
                                userID: userID, interactions: interactions, asOf: asOf)
                        else { return .notFound }
                        return .vector(
                            vector.json(thresholdsVersion: thresholds.version, computedFrom: vector.totalInteractions))
                    }
                    continuation.resume(returning: outcome)
                } catch {
                    reader.withLock { $0 = nil }
                    continuation.resume(throwing: error)
                }
            }
        }
    }
}

/// The reader, used only on the queue.
final class HistoryReaderBox: @unchecked Sendable {
    let reader: HistoryReader
    init(reader: HistoryReader) { self.reader = reader }
}

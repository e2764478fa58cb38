import BTEStore
import Synchronization

/// A few `bte_reader` connections for the read endpoints, each used on its own serial queue;
/// requests take them in turn, so one slow query holds up a fraction of the reads, not all.
final class ReaderPool: Sendable {
    private let clients: [SerialClient<ProjectionReader>]
    private let next = Atomic<UInt>(0)

    init(readerURL: String, connections: Int) {
        clients = (0..<max(connections, 1)).map { index in
            SerialClient(
                label: "bte.api.reader.\(index)", open: { try ProjectionReader(url: readerURL) },
                healthy: { $0.isHealthy })
        }
    }

    /// Runs `body` on the next connection; any failure of the database is a 503 for the caller.
    func read<R: Sendable>(_ body: @escaping @Sendable (ProjectionReader) throws -> R) async throws -> R {
        let index = Int(next.wrappingAdd(1, ordering: .relaxed).oldValue % UInt(clients.count))
        do {
            return try await clients[index].run(body)
        } catch let error as APIError {
            throw error
        } catch let error as StoreError where error.code == .readOnly {
            // Connected to a standby (the primary is gone and not yet replaced): aggregate reads
            // are served, but a personal read must be recorded first, and nothing can be written.
            throw APIError(
                .serviceUnavailable, "read_only",
                "the database takes no writes now (a standby during a failover), and this read must be recorded; "
                    + "retry")
        } catch {
            throw APIError(.serviceUnavailable, "unavailable", "the database can't be read now; retry")
        }
    }
}

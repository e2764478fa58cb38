import Dispatch

/// A blocking client (a PostgreSQL connection) used from async code: one client, used only on
/// its own serial queue, so the cooperative pool never blocks; opened on first use and opened
/// again after any failure.
final class SerialClient<Client>: @unchecked Sendable {
    private let queue: DispatchQueue
    private let open: @Sendable () throws -> Client
    private let healthy: @Sendable (Client) -> Bool
    /// Touched only on `queue`.
    private var client: Client?

    init(label: String, open: @escaping @Sendable () throws -> Client, healthy: @escaping @Sendable (Client) -> Bool) {
        queue = DispatchQueue(label: label)
        self.open = open
        self.healthy = healthy
    }

    func run<R: Sendable>(_ body: @escaping @Sendable (Client) throws -> R) async throws -> R {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { [self] in
                do {
                    if client.map(healthy) != true { client = try open() }
                    guard let client else { throw CancellationError() }
                    continuation.resume(returning: try body(client))
                } catch {
                    client = nil
                    continuation.resume(throwing: error)
                }
            }
        }
    }
}

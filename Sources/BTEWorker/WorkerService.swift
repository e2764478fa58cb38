import ServiceLifecycle

/// A worker whose loop blocks in C calls (librdkafka polls, libpq statements), run as a
/// `Service`: the loop gets a thread of its own, off the cooperative pool, and a graceful
/// shutdown (SIGTERM, SIGINT, or another service of the group ending) or a cancellation asks it
/// to finish its batch and return through its `StopSignal`.
public struct WorkerService<Outcome: Sendable>: Service, CustomStringConvertible {
    public let description: String
    private let body: @Sendable (StopSignal) throws -> Outcome
    private let finished: @Sendable (Outcome) -> Void

    /// - Parameters:
    ///   - name: the thread's name and the service's name in logs.
    ///   - body: the worker's loop; returns once `stop` is set or its work is done.
    ///   - finished: called with what the loop returned (a summary to print, say).
    public init(
        _ name: String, body: @escaping @Sendable (StopSignal) throws -> Outcome,
        finished: @escaping @Sendable (Outcome) -> Void = { _ in }
    ) {
        self.description = name
        self.body = body
        self.finished = finished
    }

    public func run() async throws {
        let stop = StopSignal()
        let body = self.body
        let outcome = try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await onThread(description) { try body(stop) }
            } onGracefulShutdown: {
                stop.stop()
            }
        } onCancel: {
            stop.stop()
        }
        finished(outcome)
    }
}

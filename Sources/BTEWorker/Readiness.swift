import Metrics
import Synchronization

/// Whether each worker of the process can do its job now (its servers answer, it is not
/// waiting to retry), for `/readyz`. Workers report; the endpoint reads.
public final class Readiness: Sendable {
    private let states = Mutex<[String: Bool]>([:])

    public init() {}

    /// Registers `worker` as not ready yet; every worker should, so that a process is not
    /// reported ready before its workers started.
    public func register(_ worker: String) {
        let ready = states.withLock { states in
            states[worker] = states[worker] ?? false
            return states[worker] ?? false
        }
        gauge(worker).record(ready ? 1 : 0)
    }

    /// Also exported as `bte_worker_ready{worker}` (1 or 0), for alerts on a worker that is down.
    public func set(_ worker: String, ready: Bool) {
        states.withLock { $0[worker] = ready }
        gauge(worker).record(ready ? 1 : 0)
    }

    private func gauge(_ worker: String) -> Gauge { Gauge(label: "bte_worker_ready", dimensions: [("worker", worker)]) }

    /// Ready when at least one worker is registered and every one is ready.
    public var isReady: Bool { states.withLock { !$0.isEmpty && $0.values.allSatisfy { $0 } } }

    /// Each worker's state, sorted by name.
    public var workers: [(name: String, ready: Bool)] {
        states.withLock { $0.sorted { $0.key < $1.key }.map { (name: $0.key, ready: $0.value) } }
    }
}

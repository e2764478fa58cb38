import Synchronization

/// The replies of the last collect requests sent with an `Idempotency-Key`, per workspace and
/// endpoint: a retry gets the first reply (what was stored) and produces nothing. Bounded in
/// count and age; a retry that misses it (another instance, a restart) produces the event again
/// under the same id, which ingest counts as a re-delivery.
final class IdempotentReplies: Sendable {
    static let capacity = 100_000
    static let lifetime = Duration.seconds(24 * 3_600)

    enum Lookup: Equatable {
        case miss
        case reply(String)
        /// The key was used for another request.
        case reused
    }

    private struct Entry {
        /// A digest of the request, not the request: bodies may be large.
        var request: Int
        var reply: String
        var stored: ContinuousClock.Instant
    }

    private struct State {
        var entries: [String: Entry] = [:]
        /// Names in the order stored, for eviction of the oldest.
        var order: [String] = []
        var head = 0
    }

    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int = IdempotentReplies.capacity) { self.capacity = capacity }

    static func digest(_ request: [UInt8]) -> Int {
        var hasher = Hasher()
        hasher.combine(request.count)
        request.withUnsafeBytes { hasher.combine(bytes: $0) }
        return hasher.finalize()
    }

    func lookup(_ name: String, request: [UInt8], now: ContinuousClock.Instant = .now) -> Lookup {
        let request = Self.digest(request)
        return state.withLock { state in
            guard let entry = state.entries[name], now - entry.stored < Self.lifetime else { return .miss }
            return entry.request == request ? .reply(entry.reply) : .reused
        }
    }

    func store(_ name: String, request: [UInt8], reply: String, now: ContinuousClock.Instant = .now) {
        let request = Self.digest(request)
        state.withLock { state in
            if state.entries.updateValue(Entry(request: request, reply: reply, stored: now), forKey: name) == nil {
                state.order.append(name)
            }
            while state.entries.count > capacity, state.head < state.order.count {
                state.entries[state.order[state.head]] = nil
                state.head += 1
            }
            // Compact the eviction queue once most of it is spent.
            if state.head > capacity {
                state.order.removeFirst(state.head)
                state.head = 0
            }
        }
    }
}

import Synchronization

/// A token bucket per key: `rate` requests a second on average, up to `burst` at once.
final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var last: ContinuousClock.Instant
    }

    private let buckets = Mutex<[Int64: Bucket]>([:])

    /// nil when allowed; otherwise whole seconds until a token is back (for `Retry-After`).
    func take(key: Int64, rate: Int, burst: Int, now: ContinuousClock.Instant = .now) -> Int? {
        buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: Double(burst), last: now)
            let elapsed = now - bucket.last
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket.tokens = min(Double(burst), bucket.tokens + seconds * Double(rate))
            bucket.last = now
            defer { buckets[key] = bucket }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return nil
            }
            return max(1, Int(((1 - bucket.tokens) / Double(rate)).rounded(.up)))
        }
    }
}

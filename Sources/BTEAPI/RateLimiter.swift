import Synchronization

/// A token bucket per key: `rate` requests a second on average, up to `burst` at once. At most
/// `capacity` keys are tracked: past it, idle (refilled) buckets are dropped first.
final class RateLimiter<Key: Hashable & Sendable>: Sendable {
    private struct Bucket {
        var tokens: Double
        var last: ContinuousClock.Instant
    }

    private let buckets = Mutex<[Key: Bucket]>([:])
    let capacity: Int

    init(capacity: Int = 100_000) { self.capacity = capacity }

    /// nil when allowed; otherwise whole seconds until a token is back (for `Retry-After`).
    func take(key: Key, rate: Int, burst: Int, now: ContinuousClock.Instant = .now) -> Int? {
        buckets.withLock { buckets in
            var bucket = refilled(buckets[key], rate: rate, burst: burst, now: now)
            if buckets[key] == nil, buckets.count >= capacity {
                buckets = buckets.filter {
                    refilled($0.value, rate: rate, burst: burst, now: now).tokens < Double(burst)
                }
                if buckets.count >= capacity { buckets.removeAll() }
            }
            defer { buckets[key] = bucket }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return nil
            }
            return wait(bucket, rate: rate)
        }
    }

    /// What `take` would answer, taking nothing.
    func peek(key: Key, rate: Int, burst: Int, now: ContinuousClock.Instant = .now) -> Int? {
        buckets.withLock { buckets in
            let bucket = refilled(buckets[key], rate: rate, burst: burst, now: now)
            return bucket.tokens >= 1 ? nil : wait(bucket, rate: rate)
        }
    }

    var count: Int { buckets.withLock { $0.count } }

    private func refilled(_ bucket: Bucket?, rate: Int, burst: Int, now: ContinuousClock.Instant) -> Bucket {
        guard var bucket else { return Bucket(tokens: Double(burst), last: now) }
        let elapsed = now - bucket.last
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        bucket.tokens = min(Double(burst), bucket.tokens + seconds * Double(rate))
        bucket.last = now
        return bucket
    }

    private func wait(_ bucket: Bucket, rate: Int) -> Int {
        max(1, Int(((1 - bucket.tokens) / Double(rate)).rounded(.up)))
    }
}

import BTEStore
import Crypto
import Dispatch
import Foundation
import Synchronization

/// An API key's text: `bte_` and 43 characters of base64url (32 random bytes). Only its SHA-256
/// is stored; `prefix` (the first 12 characters) names it in lists.
public struct NewApiKey: Sendable {
    public let text: String
    public var prefix: String { String(text.prefix(12)) }
    public var sha256: [UInt8] { ApiKeyHash.sha256(text) }

    public init() {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let base64 = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        text = "bte_" + base64
    }
}

public enum ApiKeyHash {
    public static func sha256(_ text: String) -> [UInt8] { Array(SHA256.hash(data: Array(text.utf8))) }

    /// Equal bytes, in time that depends only on the length.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}

/// The keys the server knows, looked up by hash and remembered for at most `ttl` (so a
/// revocation takes effect within it). Lookups run on a queue of their own: the store blocks.
/// Tokens that name no key are remembered apart, in a bounded cache of their own: a flood of
/// unknown tokens never evicts a valid key, and a repeated one costs no lookup.
final class KeyDirectory: Sendable {
    private let store: SerialClient<ApiKeyStore>
    private let known = Mutex<[[UInt8]: (key: StoredApiKey, at: ContinuousClock.Instant)]>([:])
    private let unknown = Mutex<[[UInt8]: ContinuousClock.Instant]>([:])
    let ttl: Duration
    static let unknownCapacity = 10_000

    init(readerURL: String, ttl: Duration = .seconds(2)) {
        store = SerialClient(
            label: "bte.api.keys", open: { try ApiKeyStore(url: readerURL) }, healthy: { $0.isHealthy })
        self.ttl = ttl
    }

    enum Cached {
        case key(StoredApiKey?)
        case unknown
        case notCached
    }

    /// What the caches say about this hash, without a lookup.
    func cached(sha256 hash: [UInt8], now: ContinuousClock.Instant = .now) -> Cached {
        if let entry = known.withLock({ $0[hash] }), now - entry.at < ttl { return .key(live(entry.key, hash: hash)) }
        if let at = unknown.withLock({ $0[hash] }), now - at < ttl { return .unknown }
        return .notCached
    }

    /// The live key with this SHA-256 (a dashboard session carries it), or nil.
    func key(sha256 hash: [UInt8]) async throws -> StoredApiKey? {
        let now = ContinuousClock.now
        switch cached(sha256: hash, now: now) {
        case .key(let key): return key
        case .unknown: return nil
        case .notCached: break
        }
        let found = try await lookup(hash)
        if let found {
            known.withLock { $0[hash] = (found, now) }
        } else {
            let ttl = self.ttl
            unknown.withLock { entries in
                if entries.count >= Self.unknownCapacity {
                    entries = entries.filter { now - $0.value < ttl }
                    if entries.count >= Self.unknownCapacity { entries.removeAll() }
                }
                entries[hash] = now
            }
        }
        return found.flatMap { live($0, hash: hash) }
    }

    private func live(_ key: StoredApiKey, hash: [UInt8]) -> StoredApiKey? {
        key.revokedAt == nil && ApiKeyHash.constantTimeEqual(key.sha256, hash) ? key : nil
    }

    /// Whether the key store answers now (for `/readyz`): a lookup of a hash no key has.
    func reachable() async -> Bool {
        do {
            _ = try await lookup(Array(repeating: 0, count: 32))
            return true
        } catch {
            return false
        }
    }

    private func lookup(_ hash: [UInt8]) async throws -> StoredApiKey? {
        try await store.run { try $0.find(sha256: hash) }
    }
}

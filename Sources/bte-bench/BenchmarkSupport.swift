import BTEStore
import Dispatch
import Foundation
import Postgres

/// Creates a migrated database, runs `body` with its owner URL, and drops it.
func withScratchDatabase<T>(adminURL: String, _ label: String, _ body: (String) throws -> T) throws -> T {
    let name = "bte_bench_\(label)_\(UInt32.random(in: 0...UInt32.max))"
    let admin = try PostgresConnection(url: adminURL)
    try admin.execute("CREATE DATABASE \(name)")
    defer { _ = try? admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
    let url = with(adminURL, database: name)
    try Migrator().apply(url: url)
    return try body(url)
}

struct BenchmarkError: Error, CustomStringConvertible {
    let message: String
    var description: String { "bench_failed: \(message)" }
}

/// libpq lets query parameters of a URI override its path and user.
func with(_ url: String, database: String? = nil, user: String? = nil) -> String {
    var result = url
    for (key, value) in [("dbname", database), ("user", user)] {
        guard let value else { continue }
        result += (result.contains("?") ? "&" : "?") + "\(key)=\(value)"
    }
    return result
}

func seconds(since start: DispatchTime) -> Double {
    Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
}

/// Hands a connection to exactly one thread.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

final class FailureBox: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [any Error] = []
    func record(_ error: any Error) {
        lock.lock()
        errors.append(error)
        lock.unlock()
    }
    var first: (any Error)? {
        lock.lock()
        defer { lock.unlock() }
        return errors.first
    }
}

extension String {
    func leftPad(_ width: Int, _ pad: Character) -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}

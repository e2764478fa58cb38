import Foundation

/// The `bte` executable run as a child process, for tests that kill or signal it.
public final class BTEProcess: @unchecked Sendable {
    public let process = Process()
    private let output = Pipe()
    private var captured = Data()
    private let lock = NSLock()

    public init(_ arguments: [String], environment: [String: String] = [:]) throws {
        process.executableURL = URL(fileURLWithPath: TestEnvironment.bteBinary())
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        process.standardOutput = output
        process.standardError = output
        output.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self else { return }
            self.lock.lock()
            self.captured.append(data)
            self.lock.unlock()
        }
        try process.run()
    }

    public var log: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: captured, as: UTF8.self)
    }

    public func signal(_ signo: Int32) { kill(process.processIdentifier, signo) }

    /// Waits for exit; returns the exit status, or nil on timeout.
    public func wait(timeout: TimeInterval) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { return nil }
        output.fileHandleForReading.readabilityHandler = nil
        // What the child wrote last may still sit in the pipe, not yet seen by the handler:
        // read it to the end (the child has exited and the parent holds no write end).
        let rest = (try? output.fileHandleForReading.readToEnd()) ?? nil
        lock.lock()
        captured.append(rest ?? Data())
        lock.unlock()
        return process.terminationStatus
    }

    /// How it ended: `.exit` or `.uncaughtSignal`.
    public var terminationReason: Process.TerminationReason { process.terminationReason }
}

/// Polls `condition` until it holds or `timeout` passes.
public func eventually(timeout: TimeInterval, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: 0.1)
    }
    return try condition()
}

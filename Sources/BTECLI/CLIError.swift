import ArgumentParser
import Foundation

/// A usage mistake: one line, exit code 1.
public struct CLIError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = "bte_usage: \(message)" }
}

/// Runs a command body and turns any error into one line on stderr and exit code 1.
public func guarded(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ExitCode {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch {
        FileHandle.standardError.write(Data("bte: error: \(error)\n".utf8))
        throw ExitCode.failure
    }
}

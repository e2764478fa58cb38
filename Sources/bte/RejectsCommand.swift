import ArgumentParser
import BTECLI
import BTEDomain
import BTEIngest
import BTEOperations
import BTEStore
import BTEWorker
import Foundation

struct RejectsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rejects",
        abstract: "Read rejected messages and redrive them after a fix.",
        subcommands: [List.self, Show.self, Export.self, Redrive.self])

    static func since(_ text: String?) throws -> Timestamp? {
        guard let text else { return nil }
        return try parseSince(text, nowMilliseconds: Int64(Date().timeIntervalSince1970 * 1000))
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Rejects, oldest first (reader role).")
        @Option(help: "Only this error code; repeatable.") var code: [String] = []
        @Option(help: "Only this source topic.") var topic: String?
        @Option(help: "Only rejects since: 90m, 36h, 7d, 2w or an RFC 3339 time.") var since: String?
        @Option(help: "At most this many (0: all).") var limit = 100
        @Option(help: "table or json.") var format = "table"
        @Option(help: "libpq URI of a reader (env BTE_READER_DATABASE_URL).") var readerDatabaseURL: String?

        func run() async throws {
            try await guarded {
                guard format == "table" || format == "json" else { throw CLIError("--format is table or json") }
                var filter = RejectFilter()
                filter.codes = try RejectsCommand.checkedCodes(code)
                filter.topic = topic
                filter.since = try RejectsCommand.since(since)
                filter.limit = max(limit, 0)
                let url = try Setting.reader.resolve(readerDatabaseURL)
                let selected = filter
                let rejects = try await onThread("rejects") { try RejectStore(url: url).rejects(selected) }
                if format == "json" {
                    print("[" + rejects.map(RejectsCommand.json).joined(separator: ",") + "]")
                    return
                }
                if rejects.isEmpty {
                    print("no rejects")
                    return
                }
                for reject in rejects {
                    let payload = reject.payloadKept ? "\(reject.payloadBytes) bytes" : "payload not kept"
                    print(
                        "\(reject.id)  \(reject.rejectedAt)  \(reject.topic)[\(reject.partition)]@\(reject.offset)  "
                            + "\(reject.code)  \(payload)"
                            + (reject.lastRedrive.map { "  redriven: \($0)" } ?? "") + "  \(reject.message)")
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One reject in full, its payload decoded when it is text (reader role).")
        @Argument(help: "The reject's id.") var id: Int64
        @Option(help: "libpq URI of a reader (env BTE_READER_DATABASE_URL).") var readerDatabaseURL: String?

        func run() async throws {
            try await guarded {
                let url = try Setting.reader.resolve(readerDatabaseURL)
                let rejectID = id
                let (found, attempts) = try await onThread("rejects") {
                    var filter = RejectFilter()
                    filter.ids = [rejectID]
                    let store = try RejectStore(url: url)
                    return (try store.rejects(filter, payloads: true).first, try store.redrives(of: rejectID))
                }
                guard let reject = found else {
                    FileHandle.standardError.write(Data("bte: not found: no reject with id \(rejectID)\n".utf8))
                    throw ExitCode.failure
                }
                print("reject \(reject.id)")
                print("topic:       \(reject.topic) (partition \(reject.partition), offset \(reject.offset))")
                print("rejected at: \(reject.rejectedAt)")
                print("code:        \(reject.code)")
                print("message:     \(reject.message)")
                print("key:         \(RejectsCommand.describe(reject.key))")
                if let payload = reject.payload {
                    print("payload:     \(payload.count) bytes, \(RejectsCommand.describe(payload, inline: false))")
                } else if reject.code == RejectionCode.tombstone.rawValue {
                    print("payload:     none (the message's value was null: a tombstone); nothing to redrive")
                } else {
                    print("payload:     not kept (personal data or intent telemetry); not redrivable")
                }
                for attempt in attempts {
                    print("redrive:     \(attempt.at) \(attempt.outcome) by \(attempt.by) (\(attempt.detail))")
                }
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rejects as NDJSON for a bulk fix: {\"reject_id\": N, \"record\": {…}} per line, the input of "
                + "redrive --fixed (reader role).",
            discussion: """
                A payload that is not a JSON object is given as "payload_base64" instead of "record". Rejects whose \
                payload was not kept (personal data, intent telemetry) are left out and counted on stderr.
                """)
        @Option(help: "Only this error code; repeatable.") var code: [String] = []
        @Option(help: "Only this source topic.") var topic: String?
        @Option(help: "Only rejects since: 90m, 36h, 7d, 2w or an RFC 3339 time.") var since: String?
        @Option(parsing: .upToNextOption, help: "Only these reject ids.") var ids: [Int64] = []
        @Option(help: "libpq URI of a reader (env BTE_READER_DATABASE_URL).") var readerDatabaseURL: String?

        func run() async throws {
            try await guarded {
                var filter = RejectFilter()
                filter.codes = try RejectsCommand.checkedCodes(code)
                filter.topic = topic
                filter.since = try RejectsCommand.since(since)
                filter.ids = ids
                filter.limit = 0
                let url = try Setting.reader.resolve(readerDatabaseURL)
                let selected = filter
                let rejects = try await onThread("rejects") {
                    try RejectStore(url: url).rejects(selected, payloads: true)
                }
                var skipped = 0
                for reject in rejects {
                    guard let line = RejectExport.line(reject) else {
                        skipped += 1
                        continue
                    }
                    print(line)
                }
                if skipped > 0 {
                    let note = "\(skipped) rejects left out: their payload was not kept "
                    FileHandle.standardError.write(Data((note + "(personal data or intent telemetry)\n").utf8))
                }
            }
        }
    }

    struct Redrive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Re-validate rejects with today's rules (or take corrected records from --fixed) and append the valid "
                + "ones exactly once; a dry run unless --execute.")
        @Option(help: "Rejects with this error code; repeatable.") var code: [String] = []
        @Option(parsing: .upToNextOption, help: "These reject ids.") var ids: [Int64] = []
        @Option(help: "Only rejects since: 90m, 36h, 7d, 2w or an RFC 3339 time.") var since: String?
        @Option(help: "Corrected records, one {\"reject_id\": N, \"record\": {…}} per line (as export writes them).")
        var fixed: String?
        @Flag(help: "Append (default: report what would happen and change nothing).") var execute = false
        @Option(help: "Who asks (recorded with each attempt; default $USER).") var by: String?
        @Option(help: "table or json.") var format = "table"
        @Option(help: "Largest accepted message in bytes (as bte ingest's).") var maxMessageBytes: Int?
        @Option(help: "libpq URI of the ingest role (env BTE_DATABASE_URL).") var databaseURL: String?

        func run() async throws {
            try await guarded {
                guard format == "table" || format == "json" else { throw CLIError("--format is table or json") }
                guard !code.isEmpty || !ids.isEmpty || fixed != nil else {
                    throw CLIError("name the rejects: --code C, --ids N…, or --fixed FILE")
                }
                var filter = RejectFilter()
                filter.codes = try RejectsCommand.checkedCodes(code)
                filter.ids = ids
                filter.since = try RejectsCommand.since(since)
                var configuration = RejectRedrive.Configuration(
                    databaseURL: try Setting.database.resolve(databaseURL), filter: filter)
                if let fixed {
                    guard let text = try? String(contentsOfFile: fixed, encoding: .utf8) else {
                        throw CLIError("can't read --fixed \(fixed)")
                    }
                    configuration.fixed = try RejectRedrive.parseFixed(text)
                }
                configuration.by = by ?? ProcessInfo.processInfo.environment["USER"] ?? "unknown"
                if let maxMessageBytes { configuration.limits.maxMessageBytes = maxMessageBytes }
                let redrive = RejectRedrive(configuration: configuration)
                let execute = self.execute
                let report = try await onThread("redrive") { execute ? try redrive.execute() : try redrive.plan() }
                print(format == "json" ? report.json() : report.table())
            }
        }
    }

    static func json(_ reject: StoredReject) -> String {
        "{\"id\":\(reject.id),\"topic\":\(quoted(reject.topic)),\"partition\":\(reject.partition),"
            + "\"offset\":\(reject.offset),\"code\":\(quoted(reject.code)),\"message\":\(quoted(reject.message)),"
            + "\"rejected_at\":\(quoted(reject.rejectedAt)),"
            + "\"payload_kept\":\(reject.payloadKept),"
            + "\"payload_bytes\":\(reject.payloadBytes),"
            + "\"last_redrive\":\(reject.lastRedrive.map(quoted) ?? "null")}"
    }

    static func quoted(_ text: String) -> String { JSONValue.quoted(text) }

    /// Text as text; anything else as hex (at most 512 bytes of it).
    static func describe(_ bytes: [UInt8]?, inline: Bool = true) -> String {
        guard let bytes else { return "none" }
        if let text = String(validating: bytes, as: UTF8.self),
            !text.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\n" && $0 != "\t" && $0 != "\r" })
        {
            return inline ? "\(text) (text)" : "text:\n\(text)"
        }
        let hex = bytes.prefix(512).map { String(format: "%02x", $0) }.joined()
        return "binary, hex\(bytes.count > 512 ? " (first 512 bytes)" : ""): \(hex)"
    }
}

extension RejectsCommand {
    /// `--code` values must be reject codes: a misspelt one would match nothing and say "no rejects".
    static func checkedCodes(_ codes: [String]) throws -> [String] {
        let known = Set(RejectionCode.all.map(\.rawValue))
        for code in codes where !known.contains(code) {
            throw CLIError(
                "--code \(code) is not a reject code; one of: "
                    + RejectionCode.all.map(\.rawValue).sorted().joined(separator: ", ")
            )
        }
        return codes
    }
}

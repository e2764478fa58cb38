import ArgumentParser
import BTECLI
import BTEDomain
import BTEStore
import BTEWorker
import Foundation
import Kafka

struct PrivacyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "privacy",
        abstract: "Privacy requests about people (a workspace's users): erase, suppress, unsuppress, export, status.",
        discussion: """
            Every request is recorded append-only with its status per user; the records name people by \
            reference (SHA-256 of workspace/user id), never by id (docs/privacy.md).
            """,
        subcommands: [
            Erase.self, Suppress.self, Unsuppress.self, Export.self, Status.self, Accesses.self, Retention.self,
            Ledger.self, Reapply.self,
        ])

    struct Request: ParsableArguments {
        @Option(help: "The workspace the users belong to.") var workspace: String
        @Argument(help: "User ids (at most 1,000).") var users: [String]
        @Option(help: "Your id for the request: filing the same reference again returns the same request.")
        var reference: String?
        @Option(help: "Who asks (recorded with the request).") var by: String
        @Option(help: "libpq URI of a member of bte_privacy, e.g. an admin (env BTE_DATABASE_URL).")
        var databaseURL: String?

        func file(_ type: PrivacyRequestType) async throws {
            let url = try Setting.database.resolve(databaseURL)
            let (workspace, users, reference, by) = (workspace, users, reference, by)
            let (request, created) = try await onThread("privacy") {
                try PrivacyStore(url: url).file(
                    workspaceID: workspace, type: type, userIDs: users, reference: reference, by: by)
            }
            print(PrivacyCommand.render(request, note: created ? nil : "(filed before; unchanged)", users: users))
        }
    }

    struct Erase: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Erase the users: their keys, vectors, deliveries and rejects go; their log rows stay unreadable.",
            discussion: """
                Deletes each person's subject (the id and key their log rows are stored under), their rows in \
                the read tables and the rejects that name them, in one transaction. Other people's outputs \
                don't change. With --suppress their new events are dropped at ingest too.
                """)
        @OptionGroup var request: Request
        @Flag(help: "Also suppress them (erase_and_suppress): their new events are not stored.") var suppress = false
        @Option(help: "Kafka bootstrap servers, for the vectors topic's tombstones (env BTE_KAFKA_BROKERS).")
        var brokers: String?
        @Option(help: "Prefix for every topic name; empty in production.") var topicPrefix = ""
        @OptionGroup var kafka: KafkaOptions

        func run() async throws {
            try await guarded {
                // Resolved first: an erasure that can't reach Kafka after it commits still retries
                // (filing the same reference again publishes the tombstones again).
                let brokers = try Setting.brokers.resolve(brokers)
                let properties = try kafka.resolve()
                try await request.file(suppress ? .eraseAndSuppress : .erase)
                let topic = topicPrefix + OutputTopic.behavioralVectors.rawValue
                let keys = (request.users.map { canonicalUUID($0) ?? $0 }).map {
                    UserKey(workspaceID: request.workspace, userID: $0).topicKey
                }
                do {
                    try await onThread("privacy-tombstones") {
                        let producer = try KafkaProducer(
                            configuration: KafkaProducerConfiguration(
                                client: KafkaClientConfiguration(brokers: brokers, properties: properties)))
                        try producer.send(
                            keys.map { KafkaOutgoingMessage(topic: topic, key: Array($0.utf8), value: nil) })
                    }
                } catch {
                    throw CLIError(
                        "erased in PostgreSQL, but the tombstones were not published to \(topic): \(error); "
                            + "run the same command again (with --reference, it is the same request)")
                }
                print("tombstones published to \(topic) for \(keys.count) users")
            }
        }
    }

    struct Suppress: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop storing the users' new events: ingest drops them, counted, keeping no payload.")
        @OptionGroup var request: Request
        func run() async throws { try await guarded { try await request.file(.suppress) } }
    }

    struct Unsuppress: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Store the users' new events again.")
        @OptionGroup var request: Request
        func run() async throws { try await guarded { try await request.file(.unsuppress) } }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Everything BTE holds about one user, as NDJSON, ending with a manifest line.",
            discussion: """
                One {"source": …, "record": …} line per record (the logs, vectors and their history, deliveries, \
                privacy requests), from one snapshot, then {"manifest": …} with the count per source. The export \
                is filed as a request, so who read what is on record.
                """)
        @Option(help: "The workspace.") var workspace: String
        @Option(help: "The user id.") var user: String
        @Option(help: "Write to this file (default: standard output).") var output: String?
        @Option(help: "Your id for the request.") var reference: String?
        @Option(help: "Who asks (recorded with the request).") var by: String
        @Option(help: "libpq URI of a member of bte_privacy, e.g. an admin (env BTE_DATABASE_URL).")
        var databaseURL: String?

        func run() async throws {
            try await guarded {
                let url = try Setting.database.resolve(databaseURL)
                let (workspace, user, output, reference, by) = (workspace, user, output, reference, by)
                let manifest = try await onThread("privacy-export") {
                    let sink: FileHandle
                    if let output {
                        guard FileManager.default.createFile(atPath: output, contents: nil),
                            let handle = FileHandle(forWritingAtPath: output)
                        else { throw CLIError("cannot write \(output)") }
                        sink = handle
                    } else {
                        sink = FileHandle.standardOutput
                    }
                    defer { if output != nil { try? sink.close() } }
                    let store = try PrivacyStore(url: url)
                    let (request, _) = try store.file(
                        workspaceID: workspace, type: .export, userIDs: [user], reference: reference, by: by)
                    let person = canonicalUUID(user) ?? user
                    var buffer: [UInt8] = []
                    let counts = try store.exportWithManifest(request, userID: person) { line in
                        buffer += Array(line.utf8) + [0x0A]
                        if buffer.count >= 1 << 16 {
                            try sink.write(contentsOf: buffer)
                            buffer.removeAll(keepingCapacity: true)
                        }
                    }
                    try sink.write(contentsOf: buffer)
                    return counts
                }
                if output != nil {
                    let total = manifest.reduce(0) { $0 + $1.records }
                    FileHandle.standardError.write(Data("exported \(total) records to \(output ?? "")\n".utf8))
                }
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A request's status, overall and per user; or a workspace's suppressed users.")
        @Argument(help: "The request id.") var requestID: String?
        @Option(help: "List this workspace's suppressed users instead.") var suppressed: String?
        @Option(help: "libpq URI of a reader (env BTE_READER_DATABASE_URL).") var readerDatabaseURL: String?

        func run() async throws {
            try await guarded {
                let url = try Setting.reader.resolve(readerDatabaseURL)
                let (requestID, suppressed) = (requestID, suppressed)
                if let suppressed {
                    guard canonicalUUID(suppressed) != nil else { throw CLIError("--suppressed is a workspace id") }
                    let rows = try await onThread("privacy") {
                        try PrivacyStore(url: url).suppressions(workspaceID: suppressed)
                    }
                    print("\(rows.count) suppressed in workspace \(suppressed.lowercased())")
                    for row in rows { print("  \(row.personRef)\tsince \(row.since)\trequest \(row.requestID)") }
                    return
                }
                guard let requestID else { throw CLIError("name a request id, or --suppressed WORKSPACE") }
                guard
                    let request = try await onThread(
                        "privacy", { try PrivacyStore(url: url).request(requestID, workspaceID: nil) })
                else { throw CLIError("not found: no privacy request \(requestID)") }
                print(PrivacyCommand.render(request, note: nil))
            }
        }
    }

    struct Accesses: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Reads of personal data through the HTTP API: when, which key, which route, which person.")
        @Option(help: "The workspace.") var workspace: String
        @Option(help: "Only reads of this user.") var user: String?
        @Option(help: "Only reads since: 90m, 36h, 7d, 2w or an RFC 3339 time.") var since: String?
        @Option(help: "At most this many, the newest.") var limit = 1_000
        @Option(help: "libpq URI of a reader (env BTE_READER_DATABASE_URL).") var readerDatabaseURL: String?

        func run() async throws {
            try await guarded {
                let url = try Setting.reader.resolve(readerDatabaseURL)
                guard let workspace = canonicalUUID(workspace) else { throw CLIError("--workspace is a UUID") }
                guard (1...100_000).contains(limit) else { throw CLIError("--limit is from 1 to 100000") }
                let from = try RejectsCommand.since(since)
                let (user, limit) = (user.map { canonicalUUID($0) ?? $0 }, limit)
                let entries = try await onThread("privacy") {
                    try ProjectionReader(url: url).accesses(
                        workspaceID: workspace, userID: user, since: from, limit: limit)
                }
                print("\(entries.count) reads of personal data in workspace \(workspace)")
                for entry in entries {
                    print("  \(entry.at)\tkey \(entry.keyID)\t\(entry.route)\t\(entry.personRef ?? "-")")
                }
            }
        }
    }

    struct Retention: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Expire the logs' months older than the months kept (dry run by default).",
            discussion: """
                The interaction log's monthly partitions are dropped whole; the business and user action logs \
                (not partitioned) have their rows of those months deleted, consent events kept. Each month is \
                recorded in privacy.retention_drops with its bounds and row count. Run once per log with \
                --log for a retention per log.
                """)
        static let logs = ["interaction_events", "business_events", "user_actions"]
        @Option(help: "Months kept, the current one included (seed default: 18).") var keepMonths = 18
        @Option(help: "A log to expire: interaction_events, business_events or user_actions (repeatable; default all).")
        var log: [String] = []
        @Flag(help: "Expire them; without it only lists them.") var execute = false
        @Option(help: "libpq URI of a member of bte_retention, e.g. an admin (env BTE_DATABASE_URL).")
        var databaseURL: String?

        func run() async throws {
            try await guarded {
                guard (1...1_200).contains(keepMonths) else { throw CLIError("--keep-months is from 1 to 1200") }
                if let unknown = log.first(where: { !Self.logs.contains($0) }) {
                    throw CLIError("--log \(unknown) is not one of \(Self.logs.joined(separator: ", "))")
                }
                let url = try Setting.database.resolve(databaseURL)
                let (keepMonths, execute) = (keepMonths, execute)
                let chosen = log.isEmpty ? Self.logs : Self.logs.filter { log.contains($0) }
                let expired = try await onThread("retention") {
                    let store = try PrivacyStore(url: url)
                    return try chosen.map { name in
                        let parts =
                            name == "interaction_events"
                            ? try store.expirePartitions(keepMonths: keepMonths, execute: execute)
                            : try store.expireRows(log: "core." + name, keepMonths: keepMonths, execute: execute)
                        return (name, parts)
                    }
                }
                for (name, parts) in expired {
                    guard !parts.isEmpty else {
                        print("core.\(name): nothing older than \(keepMonths) months")
                        continue
                    }
                    let verb =
                        name == "interaction_events"
                        ? (execute ? "dropped" : "would drop") : (execute ? "deleted" : "would delete")
                    for part in parts { print("\(verb) \(part.name) [\(part.from), \(part.to)): \(part.rows) events") }
                }
                if !execute && expired.contains(where: { !$0.1.isEmpty }) {
                    print("dry run: add --execute to expire them")
                }
            }
        }
    }

    /// A request as filed or found; `users`, the ids the caller gave, name the references they
    /// stand for (the request's records hold references only).
    static func render(_ request: PrivacyRequest, note: String?, users: [String] = []) -> String {
        var named: [String: String] = [:]
        for user in users {
            named[PersonReference.of(UserKey(workspaceID: request.workspaceID, userID: user))] = user
        }
        var lines = [
            "request \(request.requestID): \(request.type.rawValue) of \(request.personRefs.count) users in workspace "
                + "\(request.workspaceID), \(request.status)" + (note.map { " " + $0 } ?? ""),
            "  received \(request.receivedAt) by \(request.requestedBy), due \(request.dueAt)"
                + (request.reference.map { ", reference \($0)" } ?? ""),
        ]
        for user in request.users {
            let who = named[user.personRef].map { "\($0) (\(user.personRef.prefix(12)))" } ?? user.personRef
            lines.append("  \(who)\t\(user.status)\t\(user.evidence)")
        }
        return lines.joined(separator: "\n")
    }
}

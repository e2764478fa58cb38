import ArgumentParser
import BTECLI
import BTEDomain
import BTEIntents
import BTEStore
import BTEWorker
import Foundation

struct IntentsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "intents",
        abstract: "Review intent telemetry and tune verb boosts (run → review → tune → publish).",
        subcommands: [Report.self, ProposeBoosts.self, ApplyBoosts.self, Boosts.self])

    struct WindowOptions: ParsableArguments {
        @Option(help: "How far back: a duration (90m, 36h, 7d, 2w) or an RFC 3339 time.") var since: String
        @Option(help: "End of the window, RFC 3339 (default: now).") var until: String?
        @Option(help: "libpq URI of a reader (env BTE_READER_DATABASE_URL).") var readerDatabaseURL: String?

        func window() throws -> ReviewWindow {
            var end = Timestamp(microseconds: Int64(Date().timeIntervalSince1970 * 1_000_000))
            if let until {
                guard let parsed = Timestamp(rfc3339: until) else {
                    throw IntentReviewError(.invalidTimestamp, "--until takes an RFC 3339 time, not '\(until)'")
                }
                end = parsed
            }
            return try ReviewWindow(since: since, until: end)
        }

        func readerURL() throws -> String { try Setting.reader.resolve(readerDatabaseURL) }
    }

    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Failure modes, clarify and SemReg deny rates, hottest verbs, prompt versions compared (read-only).")
        @OptionGroup var window: WindowOptions
        @Option(help: "Only this prompt version (the comparison still shows every version).") var promptVersion: String?
        @Option(help: "table or json.") var format = "table"
        @Option(help: "Verbs per list.") var top = 10

        func run() async throws {
            try await guarded {
                guard format == "table" || format == "json" else {
                    throw CLIError("--format is table or json, not \(format)")
                }
                guard top > 0 else { throw CLIError("--top must be positive") }
                let (range, url, version, top) = (try window.window(), try window.readerURL(), promptVersion, top)
                let input = try await onThread("intents") {
                    try IntentReviewStore(url: url)
                        .reportInput(window: range, promptVersion: version, top: top)
                }
                let report = IntentReport(input)
                print(format == "json" ? report.json() : report.table(), terminator: "")
            }
        }
    }

    struct ProposeBoosts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "propose-boosts",
            abstract: "Derive a reviewable verb boost proposal from telemetry (read-only; apply it with apply-boosts).")
        @OptionGroup var window: WindowOptions
        @Option(help: "Events a verb needs in its bucket to be proposed.") var minSupport = 5
        @Option(help: "Write the proposal to this file instead of stdout.") var output: String?

        func run() async throws {
            try await guarded {
                guard minSupport > 0 else { throw CLIError("--min-support must be positive") }
                let (range, url) = (try window.window(), try window.readerURL())
                let input = try await onThread("intents") {
                    try IntentReviewStore(url: url).proposalInput(window: range)
                }
                let proposal = BoostProposal(
                    window: range, userChoices: input.userChoices, forcedOverrides: input.forcedOverrides,
                    current: input.current, minSupport: minSupport)
                guard let output else {
                    print(proposal.json(), terminator: "")
                    return
                }
                do {
                    try Data(proposal.json().utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
                } catch {
                    throw CLIError("cannot write \(output): \(error.localizedDescription)")
                }
                FileHandle.standardError.write(
                    Data(
                        ("bte: \(proposal.rules.count) rules proposed in \(output); "
                            + "review, then: bte intents apply-boosts \(output) --by <admin> --why <reason>\n")
                            .utf8))
            }
        }
    }

    struct ApplyBoosts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "apply-boosts",
            abstract: "Append the rules of a reviewed proposal to agent.verb_boost_rules (needs a bte_admin member).")
        @Argument(help: "The proposal file.") var file: String
        @Option(help: "Who applies it (an admin id).") var by: String
        @Option(help: "Why it is applied.") var why: String
        @Option(help: "libpq URI of an admin (env BTE_DATABASE_URL).") var databaseURL: String?

        func run() async throws {
            try await guarded {
                let url = try Setting.database.resolve(databaseURL)
                let bytes: Data
                do { bytes = try Data(contentsOf: URL(fileURLWithPath: file)) } catch {
                    throw CLIError("cannot read \(file): \(error.localizedDescription)")
                }
                let rules = try BoostProposal.rules(fromFile: Array(bytes))
                let (by, why) = (by, why)
                let id = try await onThread("intents") {
                    try IntentReviewStore(url: url).apply(rules, by: by, why: why)
                }
                print("applied \(rules.count) rules (proposal \(id)) by \(by)")
            }
        }
    }

    struct Boosts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The verb boost rules in force (read-only).")
        @Option(help: "libpq URI of a reader (env BTE_READER_DATABASE_URL).") var readerDatabaseURL: String?

        func run() async throws {
            try await guarded {
                let url = try Setting.reader.resolve(readerDatabaseURL)
                let entries = try await onThread("intents") {
                    try IntentReviewStore(url: url).boostsInForce()
                }
                if entries.isEmpty { print("no verb boost rules") }
                for entry in entries {
                    let key = entry.key
                    print(
                        "\(key.scopeBucket)\t\(key.subjectKind)\t\(key.phase)\t\(key.verb)\t"
                            + "\(formatRate(entry.weight))\t\(entry.proposalID) "
                            + "by \(entry.appliedBy): \(entry.appliedWhy)"
                    )
                }
            }
        }
    }
}

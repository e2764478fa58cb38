import ArgumentParser
import BTECLI
import BTEDomain
import BTEModels
import BTEOperations
import BTEStore
import BTEWorker
import Foundation
import Kafka

extension ModelsCommand {
    struct Runs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Estimate and simulation runs, newest first.")
        @OptionGroup var options: ConnectionOptions
        @Option(help: "Only this workspace's runs.") var workspace: String?
        @Option(help: "At most this many.") var limit = 20
        @Option(help: "table or json.") var format = "table"

        func run() async throws {
            try await guarded {
                try ModelsCommand.checkFormat(format)
                if let workspace, canonicalUUID(workspace) == nil { throw CLIError("--workspace must be a UUID") }
                guard (1...10_000).contains(limit) else { throw CLIError("--limit is 1 to 10,000") }
                let url = try options.resolvedDatabaseURL()
                let workspaceID = workspace.flatMap(canonicalUUID)
                let count = limit
                let runs = try await onThread("models") {
                    try ModelStore(url: url).runs(workspaceID: workspaceID, limit: count)
                }
                let json = JSONValue.array(
                    runs.map { r in
                        ModelJSON.object([
                            ("kind", .string(r.kind)), ("run_id", .string(r.runID)),
                            ("workspace_id", .string(r.workspaceID)),
                            ("model_type", .string(r.modelType)), ("summary", .string(r.summary)),
                            ("created_at", .string(r.createdAt)),
                        ])
                    })
                ModelsCommand.output(json, format: format) {
                    (["kind        run_id                                model_type    summary"]
                        + runs.map {
                            $0.kind.padding(toLength: 12, withPad: " ", startingAt: 0) + $0.runID + "  "
                                + $0.modelType.padding(toLength: 14, withPad: " ", startingAt: 0) + $0.summary
                        }).joined(separator: "\n")
                }
            }
        }
    }

    struct Segments: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Segments: named filters over a workspace's users that restrict the KPIs.",
            subcommands: [Create.self, List.self])

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Create a segment: --filter '{\"user_ids\": […]}' or '{\"device_types\": [\"ios\"]}'.")
            @OptionGroup var options: ConnectionOptions
            @Option(help: "The workspace (UUID).") var workspace: String
            @Option(help: "The segment's name.") var name: String
            @Option(help: "JSON filter: user_ids and/or device_types.") var filter: String

            func run() async throws {
                try await guarded {
                    guard let workspaceID = canonicalUUID(workspace) else {
                        throw CLIError("--workspace must be a UUID")
                    }
                    guard !name.isEmpty, name.count <= 200 else { throw CLIError("--name is 1 to 200 characters") }
                    let parsed = try ModelStore.SegmentFilter(json: filter)
                    let url = try options.resolvedDatabaseURL()
                    let segmentName = name
                    let id = try await onThread("models") {
                        try ModelStore(url: url).createSegment(
                            workspaceID: workspaceID, name: segmentName, filter: parsed)
                    }
                    print("segment \(segmentName) (\(id)): \(parsed.json)")
                }
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "A workspace's segments.")
            @OptionGroup var options: ConnectionOptions
            @Option(help: "The workspace (UUID).") var workspace: String

            func run() async throws {
                try await guarded {
                    guard let workspaceID = canonicalUUID(workspace) else {
                        throw CLIError("--workspace must be a UUID")
                    }
                    let url = try options.resolvedDatabaseURL()
                    let segments = try await onThread("models") {
                        try ModelStore(url: url).segments(workspaceID: workspaceID)
                    }
                    for s in segments { print("\(s.name)  \(s.filter)  \(s.createdAt)") }
                }
            }
        }
    }
}

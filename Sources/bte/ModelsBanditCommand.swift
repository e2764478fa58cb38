import ArgumentParser
import BTECLI
import BTEDomain
import BTEModelRuns
import BTEModels
import BTEOperations
import BTEStore
import BTEWorker
import Foundation
import Kafka

extension ModelsCommand {
    struct Bandit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Constrained Thompson sampling over control actions, kept as an append-only log.",
            subcommands: [Choose.self, Reward.self])

        struct Choose: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Choose an action: the best sampled one whose simulated week keeps the guardrails.",
                discussion: """
                    --actions FILE: {"actions": [{"rollout_pct": 0.5}, {"promo_voltage": 0.3}, …]}, each the \
                    controls it sets. Prints the decision id to reward later.
                    """)
            @OptionGroup var options: ConnectionOptions
            @Option(help: "The workspace (UUID).") var workspace: String
            @Option(help: "The bandit's name (its log).") var bandit: String
            @Option(help: "A state_space estimate run (context and guardrails).") var run: String
            @Option(help: "Actions JSON file.") var actions: String
            @Option(help: "Days each action is simulated for the guardrails.") var horizon = 7
            @Option(help: "Random seed (combined with the log's length).") var seed: UInt64 = 1
            @Option(help: "Guardrails JSON file; default the seed's.") var guardrails: String?

            func run() async throws {
                try await guarded {
                    guard let workspaceID = canonicalUUID(workspace) else {
                        throw CLIError("--workspace must be a UUID")
                    }
                    guard canonicalUUID(run) != nil else { throw CLIError("--run must be a run id (UUID)") }
                    guard !bandit.isEmpty, bandit.count <= 200 else {
                        throw CLIError("--bandit is 1 to 200 characters")
                    }
                    guard (1...90).contains(horizon) else { throw CLIError("--horizon is 1 to 90 days") }
                    guard case .array(let items)? = try ModelsCommand.readJSON(actions, what: "actions file")["actions"]
                    else { throw CLIError("the actions file needs \"actions\": an array of objects") }
                    let parsed = try items.map { try ModelRequests.finiteObject($0, "action") }
                    var request = ModelRuns.BanditRequest(
                        workspaceID: workspaceID, bandit: bandit, runID: run, actions: parsed)
                    request.horizon = horizon
                    request.seed = seed
                    if let path = guardrails { request.guardrails = try ModelsCommand.guardrailSettings(path) }
                    let url = try options.resolvedDatabaseURL()
                    let banditRequest = request
                    let decision = try await onThread("models") {
                        try ModelRuns(store: try ModelStore(url: url)).banditChoose(banditRequest)
                    }
                    print(decision.prettyString().trimmingCharacters(in: .newlines))
                }
            }
        }

        struct Reward: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Record the reward that followed a decision.")
            @OptionGroup var options: ConnectionOptions
            @Option(help: "The decision's id.") var decision: String
            @Option(help: "The observed reward.") var reward: Double

            func run() async throws {
                try await guarded {
                    guard reward.isFinite else { throw CLIError("--reward must be a finite number") }
                    let url = try options.resolvedDatabaseURL()
                    let (id, value) = (decision, reward)
                    let owner = try await onThread("models") {
                        try ModelStore(url: url).recordReward(decisionID: id, reward: value)
                    }
                    print("reward \(value) recorded for decision \(id) of bandit \(owner.bandit)")
                }
            }
        }
    }
}

import ArgumentParser
import BTECLI
import BTEDomain
import BTEModels
import BTEOperations
import BTEStore
import BTEWorker
import Foundation
import Kafka

struct ModelsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "KPI models: fit from the logs, simulate and forecast, list runs and segments.",
        discussion: """
            Reads the logs as role bte_models (--database-url: a member of it; bte_ingest is), records \
            every run in bte.model_configs, bte.estimate_runs and bte.simulation_runs, and publishes it \
            to bte.model-runs.v1.
            """,
        subcommands: [
            Fit.self, Simulate.self, Forecast.self, Recommend.self, Bandit.self, Experiment.self, Holdout.self,
            Runs.self,
            Segments.self,
        ])

    static let topic = "bte.model-runs.v1"

    /// Records the run's JSON on the models topic (key: the workspace), acknowledged.
    static func publish(_ record: JSONValue, workspace: String, options: ConnectionOptions) async throws {
        let brokers = try options.resolvedBrokers()
        let properties = try options.resolvedKafkaProperties()
        let topic = options.topicPrefix + Self.topic
        let bytes = record.canonicalBytes()
        do {
            try await onThread("models-publish") {
                let producer = try KafkaProducer(
                    configuration: KafkaProducerConfiguration(
                        client: KafkaClientConfiguration(brokers: brokers, properties: properties)))
                try producer.send([KafkaOutgoingMessage(topic: topic, key: Array(workspace.utf8), value: bytes)])
            }
        } catch {
            var id = "the run"
            if case .string(let runID)? = record["run_id"] ?? record["decision_id"] { id = "run \(runID)" }
            throw CLIError("\(id) is recorded in PostgreSQL but was not published to \(topic): \(error)")
        }
    }

    static func output(_ record: JSONValue, format: String, table: () -> String) {
        print(format == "json" ? record.prettyString().trimmingCharacters(in: .newlines) : table())
    }

    static func checkFormat(_ format: String) throws {
        guard format == "table" || format == "json" else { throw CLIError("--format is table or json") }
    }

    /// A JSON number, for reading records back into tables.
    static func number(_ v: JSONValue?) -> Double? {
        if case .number(let t)? = v { return Double(t) }
        return nil
    }

    static func numbers(_ v: JSONValue?) -> [Double] {
        if case .array(let items)? = v { return items.map { number($0) ?? .nan } }
        return []
    }

    static func fixed(_ x: Double?, _ digits: Int = 3) -> String {
        guard let x, x.isFinite else { return "-" }
        return String(format: "%.\(digits)f", x)
    }
}

import ArgumentParser
import BTECLI
import BTEWorker
import Kafka

struct Topics: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage topics.", subcommands: [Apply.self])

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the missing topics of topics/*.json; idempotent.")
        @OptionGroup var options: ConnectionOptions
        @Option(help: "Folder with the topic specs.") var topicsDir: String = "topics"
        @Option(help: "Override every spec's replication factor.") var replicationFactor: Int32?

        func run() async throws {
            try await guarded {
                let specs = try TopicSpec.load(directory: topicsDir)
                let brokers = try options.resolvedBrokers()
                let kafkaProperties = try options.resolvedKafkaProperties()
                let prefix = options.topicPrefix
                let factor = replicationFactor
                let result = try await onThread("topics") {
                    let admin = try KafkaAdmin(
                        configuration: KafkaClientConfiguration(brokers: brokers, properties: kafkaProperties))
                    return try admin.createTopics(specs.map { $0.newTopic(prefix: prefix, replicationFactor: factor) })
                }
                for spec in specs {
                    let name = prefix + spec.name
                    let state = result[name] == .created ? "created" : "exists"
                    print("topic \(name): \(state) (\(spec.partitions) partitions, \(spec.cleanupPolicy))")
                }
            }
        }
    }
}

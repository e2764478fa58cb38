import BTECLI
import Foundation
import Kafka

/// A topic spec file of `topics/`.
struct TopicSpec: Decodable {
    let name: String
    let partitions: Int32
    let replicationFactor: Int32
    let cleanupPolicy: String
    let configs: [String: String]

    enum CodingKeys: String, CodingKey {
        case name, partitions, configs
        case replicationFactor = "replication_factor"
        case cleanupPolicy = "cleanup_policy"
    }

    static func load(directory: String) throws -> [TopicSpec] {
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw CLIError("cannot read topic specs in \(directory) (pass --topics-dir)")
        }
        let names = entries.filter { $0.hasSuffix(".json") }.sorted()
        guard !names.isEmpty else { throw CLIError("no topic specs in \(directory)") }
        return try names.map { name in
            let data = try Data(contentsOf: URL(fileURLWithPath: directory).appendingPathComponent(name))
            do {
                return try JSONDecoder().decode(TopicSpec.self, from: data)
            } catch {
                throw CLIError("topic spec \(name) is invalid: \(error)")
            }
        }
    }

    func newTopic(prefix: String, replicationFactor override: Int32?) -> KafkaNewTopic {
        KafkaNewTopic(
            name: prefix + name, partitions: partitions, replicationFactor: override ?? replicationFactor,
            configs: configs)
    }
}

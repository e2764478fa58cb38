import ArgumentParser
import BTECLI
import BTEDomain
import BTEFixtures
import BTEWorker
import Foundation
import Kafka

struct Generate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Produce a realistic demo stream (with re-deliveries and bad input) to the input topics.")
    @OptionGroup var options: ConnectionOptions
    @Option(help: "Valid events to produce.") var events = 10_000
    @Option(help: "Random seed; the same seed gives the same stream.") var seed: UInt64 = 1
    @Option(help: "Rounds of bad input (one message of each kind per round).") var badRounds = 1
    @Option(help: "Every n-th valid message is sent twice (0: never).") var duplicateEvery = 50
    @Option(help: "Events end at this instant (RFC 3339); default now.") var end: String?

    func run() async throws {
        try await guarded {
            var streamOptions = DemoStream.Options()
            streamOptions.events = events
            streamOptions.seed = seed
            streamOptions.badRounds = badRounds
            streamOptions.duplicateEvery = duplicateEvery
            streamOptions.topicPrefix = options.topicPrefix
            if let end {
                guard let parsed = Timestamp(rfc3339: end) else {
                    throw CLIError("--end is not an RFC 3339 timestamp: \(end)")
                }
                streamOptions.end = parsed
            } else {
                streamOptions.end = Timestamp(microseconds: Int64(Date().timeIntervalSince1970 * 1_000_000))
            }
            let stream = DemoStream(options: streamOptions)
            let brokers = try options.resolvedBrokers()
            let kafkaProperties = try options.resolvedKafkaProperties()
            let started = Date()
            try await onThread("generate") {
                let producer = try KafkaProducer(
                    configuration: KafkaProducerConfiguration(
                        client: KafkaClientConfiguration(brokers: brokers, properties: kafkaProperties)))
                var index = 0
                while index < stream.messages.count {
                    let chunk = Array(stream.messages[index..<min(index + 20_000, stream.messages.count)])
                    try producer.send(chunk)
                    index += chunk.count
                }
            }
            let seconds = Date().timeIntervalSince(started)
            print(
                "produced \(stream.total) messages in \(String(format: "%.2f", seconds)) s: "
                    + "\(stream.totalStored) distinct valid events, \(stream.totalDuplicates) re-deliveries, "
                    + "\(stream.totalRejected) bad"
            )
        }
    }
}

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
    @Option(
        help: ArgumentHelp(
            "Random seed (default: a fresh one, printed). The same seed with the same --end gives the same bytes; "
                + "a stream generated again with the same seed and another end would reuse its event ids."))
    var seed: UInt64?
    @Option(help: "Rounds of bad input (one message of each kind per round).") var badRounds = 1
    @Option(help: "Every n-th valid message is sent twice (0: never).") var duplicateEvery = 50
    @Option(help: "Events end at this instant (RFC 3339); default now.") var end: String?
    @Option(
        help: """
            Also this many days, ending yesterday, of one workspace's product activity for the KPI \
            models (users, cohorts, orders, control changes); 0: none.
            """)
    var modelDays = 0

    func run() async throws {
        try await guarded {
            var streamOptions = DemoStream.Options()
            streamOptions.events = events
            // A fresh seed by default: a second run adds new events instead of conflicting with the first's ids.
            let seed = self.seed ?? UInt64.random(in: 1...UInt64(UInt32.max))
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
            guard (0...3_650).contains(modelDays) else { throw CLIError("--model-days is 0 to 3,650") }
            var modelOptions = ModelStream.Options()
            modelOptions.seed = seed
            modelOptions.days = modelDays
            // The days end the day before --end, so --seed and --end reproduce them too.
            let endMicros = streamOptions.end.microseconds
            let perDay = Timestamp.microsecondsPerDay
            let endDay = Int(endMicros / perDay - (endMicros % perDay < 0 ? 1 : 0))
            modelOptions.firstDay = endDay - modelDays
            modelOptions.topicPrefix = options.topicPrefix
            let models = modelDays > 0 ? ModelStream(options: modelOptions) : nil
            let brokers = try options.resolvedBrokers()
            let kafkaProperties = try options.resolvedKafkaProperties()
            let started = Date()
            try await onThread("generate") {
                let producer = try KafkaProducer(
                    configuration: KafkaProducerConfiguration(
                        client: KafkaClientConfiguration(brokers: brokers, properties: kafkaProperties)))
                for messages in [stream.messages, models?.messages ?? []] {
                    var index = 0
                    while index < messages.count {
                        let chunk = Array(messages[index..<min(index + 20_000, messages.count)])
                        try producer.send(chunk)
                        index += chunk.count
                    }
                }
            }
            if let models {
                print(
                    "produced \(models.messages.count) messages of workspace \(modelOptions.workspace)'s activity over "
                        + "\(modelDays) days for the KPI models (\(models.firstSeen.count) users)")
            }
            let seconds = Date().timeIntervalSince(started)
            print("seed \(seed) (--seed \(seed) --end \(streamOptions.end.rfc3339) produces these bytes again)")
            print(
                "produced \(stream.total) messages in \(String(format: "%.2f", seconds)) s: "
                    + "\(stream.totalStored) distinct valid events, \(stream.totalDuplicates) re-deliveries, "
                    + "\(stream.totalRejected) bad"
            )
        }
    }
}

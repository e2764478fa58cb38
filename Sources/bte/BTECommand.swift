import ArgumentParser
import Foundation

@main
struct BTECommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bte",
        abstract: "Behavioral Telemetry Engine: Kafka → immutable PostgreSQL logs → behavioral signals.",
        subcommands: [
            Migrate.self, Topics.self, Ingest.self, Generate.self, ThresholdsCommand.self, SweepCommand.self,
            ProjectCommand.self, RunCommand.self, IntentsCommand.self, ReplayCommand.self, RejectsCommand.self,
            StatusCommand.self, KeysCommand.self, ServeCommand.self, SinkCommand.self, InsightsCommand.self,
            ModelsCommand.self, PrivacyCommand.self,
        ])

    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
            // A finished command ends the same way as a failing one, and for the same reason: the
            // exit handlers raced a Kafka client's threads winding down and corrupted the heap
            // (`bte project --until-idle` aborted in malloc after its summary line).
            fflush(nil)
            _exit(0)
        } catch {
            let code = exitCode(for: error)
            guard code != .success else { exit(withError: error) }
            // A failing command ends without the C libraries' exit handlers: OpenSSL's cleanup
            // would run while a Kafka client's threads may still be winding down, and crash.
            let message = fullMessage(for: error)
            if !message.isEmpty { FileHandle.standardError.write(Data((message + "\n").utf8)) }
            fflush(nil)
            _exit(code.rawValue)
        }
    }
}

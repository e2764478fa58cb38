import ArgumentParser

@main
struct BTECommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bte",
        abstract: "Behavioral Telemetry Engine: Kafka → immutable PostgreSQL logs → behavioral signals.",
        subcommands: [
            Migrate.self, Topics.self, Ingest.self, Generate.self, ThresholdsCommand.self, SweepCommand.self,
            ProjectCommand.self, RunCommand.self, IntentsCommand.self, ReplayCommand.self, RejectsCommand.self,
            StatusCommand.self, KeysCommand.self, ServeCommand.self, SinkCommand.self, InsightsCommand.self,
            ModelsCommand.self,
        ])
}

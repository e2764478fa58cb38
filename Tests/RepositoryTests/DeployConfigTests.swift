import Foundation
import Testing

/// docker-compose.yml and the Kubernetes base run every long-running command and set every
/// environment variable the binary reads: a new setting or worker fails here until both know it.
@Suite struct DeployConfigTests {
    /// `"BTE_…"` names in the sources of `bte` (not the benchmarks), less the prefix of the Kafka
    /// properties and the local scripts' broker port.
    static func variables() throws -> Set<String> {
        var names: Set<String> = []
        let sources = MonitoringConfigTests.root.appendingPathComponent("Sources")
        guard let walker = FileManager.default.enumerator(atPath: sources.path) else { return [] }
        for case let path as String in walker where path.hasSuffix(".swift") && !path.hasPrefix("bte-bench/") {
            let text = try String(contentsOf: sources.appendingPathComponent(path), encoding: .utf8)
            names.formUnion(try MonitoringConfigTests.matches(#""(BTE_[A-Z0-9_]+)""#, in: text))
        }
        return names.subtracting(["BTE_KAFKA_", "BTE_KAFKA_PORT"])
    }

    static func kubernetes() throws -> String {
        let folder = MonitoringConfigTests.root.appendingPathComponent("deploy/k8s")
        return try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".yaml") }
            .sorted()
            .map { try String(contentsOf: folder.appendingPathComponent($0), encoding: .utf8) }.joined(separator: "\n")
    }

    @Test func everyVariableTheBinaryReadsIsSet() throws {
        let variables = try Self.variables()
        #expect(
            variables.isSuperset(of: [
                "BTE_KAFKA_BROKERS", "BTE_DATABASE_URL", "BTE_READER_DATABASE_URL", "BTE_METRICS_PORT", "BTE_LOG_LEVEL",
                "BTE_INSTANCE_ID",
            ]), "\(variables.sorted())")
        let compose = try MonitoringConfigTests.read("docker-compose.yml")
        let kubernetes = try Self.kubernetes()
        for name in variables.sorted() {
            #expect(compose.contains(name), "docker-compose.yml does not set \(name)")
            #expect(kubernetes.contains(name), "deploy/k8s does not set \(name)")
        }
    }

    @Test func everyWorkerAndJobIsDeployed() throws {
        let compose = try MonitoringConfigTests.read("docker-compose.yml")
        let kubernetes = try Self.kubernetes()
        // The long-running commands, each with its metrics endpoint reachable from outside the container.
        for worker in [
            #"["ingest", "--metrics-host", "0.0.0.0"]"#, #"["project", "--metrics-host", "0.0.0.0"]"#,
            #"["serve", "--host", "0.0.0.0"]"#, #"["sink", "--metrics-host", "0.0.0.0"]"#,
        ] {
            #expect(compose.contains(worker), "docker-compose.yml lacks \(worker)")
            #expect(kubernetes.contains(worker), "deploy/k8s lacks \(worker)")
        }
        #expect(compose.contains(#"["sweep", "--every", "15m", "--metrics-host", "0.0.0.0"]"#))
        #expect(kubernetes.contains(#"["sweep", "--every", "15m", "--once"]"#))
        for job in ["bte migrate", "bte topics apply --topics-dir /etc/bte/topics"] {
            #expect(compose.contains(job), "docker-compose.yml lacks \(job)")
            #expect(kubernetes.contains(job), "deploy/k8s lacks \(job)")
        }
        #expect(kubernetes.contains(#"args: ["replay", "#))
        #expect(kubernetes.contains(#"args: ["sink", "retention", "--keep-months", "18", "--execute"]"#))
        // Probes on the endpoints every worker serves.
        #expect(compose.contains("/readyz"))
        #expect(kubernetes.contains("path: /healthz") && kubernetes.contains("path: /readyz"))
    }
}

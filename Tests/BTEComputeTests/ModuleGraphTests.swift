import Foundation
import Testing

/// The computations can't reach a write path: BTECompute depends (transitively) on no module
/// that talks to Kafka or PostgreSQL, and its sources use no clock or randomness.
@Suite struct ModuleGraphTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test func computeModuleHasNoIODependencies() throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("Package.swift"), encoding: .utf8)
        // Dependencies of each target as declared: `.target(name: "X", dependencies: [...]`.
        var dependencies: [String: [String]] = [:]
        let pattern = try NSRegularExpression(pattern: #"name:\s*"([A-Za-z]+)",\s*dependencies:\s*\[([^\]]*)\]"#)
        for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
            guard let name = Range(match.range(at: 1), in: text), let list = Range(match.range(at: 2), in: text) else {
                continue
            }
            let quoted = try NSRegularExpression(pattern: #""([A-Za-z]+)""#)
            let listText = String(text[list])
            dependencies[String(text[name])] = quoted.matches(
                in: listText, range: NSRange(listText.startIndex..., in: listText)
            ).compactMap {
                Range($0.range(at: 1), in: listText).map { String(listText[$0]) }
            }
        }
        // The pure modules: the computations and the intent review's arithmetic.
        for module in ["BTECompute", "BTEIntents", "BTEModels"] {
            #expect(dependencies[module] != nil, "\(module) not found in Package.swift")
            var reachable: Set<String> = []
            var queue = [module]
            while let next = queue.popLast() {
                for dependency in dependencies[next] ?? [] where reachable.insert(dependency).inserted {
                    queue.append(dependency)
                }
            }
            let forbidden: Set<String> = [
                "Kafka", "Postgres", "BTEStore", "BTEIngest", "BTEProjection", "BTEWorker", "CRdKafka", "CLibPQ",
                "BTEAPI",
            ]
            #expect(reachable.isDisjoint(with: forbidden), "\(module) reaches \(reachable.intersection(forbidden))")
        }
    }

    @Test(arguments: ["BTECompute", "BTEIntents", "BTEModels"])
    func computeSourcesUseNoClockOrRandomness(_ module: String) throws {
        let folder = Self.root.appendingPathComponent("Sources/\(module)")
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) where name.hasSuffix(".swift") {
            let source = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
            for banned in [
                "import Foundation", "Date()", ".random", "DispatchTime", "ProcessInfo", "import Kafka",
                "import Postgres", "import BTEStore",
            ] {
                #expect(!source.contains(banned), "\(name) uses \(banned)")
            }
        }
    }
}

/// The projection is read-only: the projector and sweep sources hold no write path and use
/// only the reader side of the store.
@Suite struct ReadOnlyProjectionTests {
    @Test func projectionSourcesHaveNoWritePath() throws {
        let root = ModuleGraphTests.root
        let projection = try FileManager.default.contentsOfDirectory(
            atPath: root.appendingPathComponent("Sources/BTEProjection").path
        )
        .filter { $0.hasSuffix(".swift") }.map { "Sources/BTEProjection/" + $0 }
        #expect(
            projection.contains("Sources/BTEProjection/Projector.swift")
                && projection.contains("Sources/BTEProjection/Sweep.swift"))
        let files = projection + ["Sources/BTEStore/HistoryReader.swift"]
        for file in files {
            let source = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
            for banned in [
                "IngestStore", "ThresholdStore(connection: reader.connection).set", ".set(key:", "INSERT", "UPDATE ",
                "DELETE", "TRUNCATE", "COPY ", "databaseURL",
            ] {
                #expect(!source.contains(banned), "\(file) contains \(banned)")
            }
        }
        // Every SQL transaction of the reader is declared read-only.
        let reader = try String(
            contentsOf: root.appendingPathComponent("Sources/BTEStore/HistoryReader.swift"), encoding: .utf8)
        #expect(reader.contains("READ ONLY"))
    }
}

// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "bte",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "bte", targets: ["bte"]),
        .executable(name: "bte-bench", targets: ["bte-bench"]),
        // For producers (the orchestrator): PII-safe intent telemetry records.
        .library(name: "BTEIntentTelemetry", targets: ["BTEIntentTelemetry"]),
    ],
    dependencies: [
        // Ranges, not pins: producers that depend on BTEIntentTelemetry resolve them together
        // with their own packages.
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
        // Tests only: property tests of the parsers of outside input.
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        // Spans over OTLP/HTTP only: the gRPC exporter's dependencies are not built.
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // C libraries, seen only by the wrappers.
        .systemLibrary(name: "CRdKafka", pkgConfig: "rdkafka", providers: [.apt(["librdkafka-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        // LAPACK's C interface (OpenBLAS underneath) for the models' factorizations.
        .systemLibrary(
            name: "CLapack", pkgConfig: "lapacke", providers: [.apt(["liblapacke-dev", "libopenblas-dev"])]),
        // Safe wrappers with no BTE knowledge.
        .target(name: "Kafka", dependencies: ["CRdKafka"], swiftSettings: strict),
        .target(name: "Postgres", dependencies: ["CLibPQ"], swiftSettings: strict),
        // Pure domain: events, JSON, validation, topic names. No I/O, Foundation at most.
        .target(name: "BTEDomain", swiftSettings: strict),
        // Pure computations (signals, vectors, insights): no I/O, no clock. It may depend on
        // BTEDomain and hashing only; a test checks the package graph keeps it that way.
        .target(
            name: "BTECompute",
            dependencies: ["BTEDomain", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        // The KPI models: Kalman filter and smoother, EM, RC retention, RLS, simulation and
        // guardrails. Pure like BTECompute: no I/O, no clock; randomness only from a given seed.
        .target(
            name: "BTEModels",
            dependencies: ["BTEDomain", "CLapack", .product(name: "RealModule", package: "swift-numerics")],
            swiftSettings: strict
        ),
        // The producer library: utterance normalization, hashing, redacted previews.
        .target(
            name: "BTEIntentTelemetry",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        // Intent telemetry review: the report and boost proposals, computed from counts (no I/O).
        .target(
            name: "BTEIntents",
            dependencies: ["BTEDomain", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        // Migrations, log appender, offsets, the read-only history reader.
        .target(
            name: "BTEStore",
            dependencies: [
                "BTEDomain", "BTECompute", "BTEIntents", "BTEModels", "Postgres",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            resources: [.copy("Migrations")],
            swiftSettings: strict
        ),
        // What every worker shares: stopping, failure classification, threads for blocking calls,
        // running as a service, readiness.
        .target(
            name: "BTEWorker",
            dependencies: [
                "BTEDomain", "BTEStore", "Kafka", "Postgres",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strict
        ),
        // HTTP: the observability endpoint (/metrics, /healthz, /readyz) of long-running commands.
        .target(
            name: "BTEHTTP",
            dependencies: [
                "BTEWorker",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // Input topics → immutable logs, exactly once (bte ingest).
        .target(
            name: "BTEIngest",
            dependencies: [
                "BTEDomain", "BTEStore", "BTEWorker", "Kafka", "Postgres",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        // Logs → signals, vectors and insights on the output topics, read-only (bte project, bte sweep).
        .target(
            name: "BTEProjection",
            dependencies: [
                "BTEDomain", "BTECompute", "BTEStore", "BTEWorker", "Kafka",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        // The HTTP API (`bte serve`): collect endpoints, keys, the spec.
        .target(
            name: "BTEAPI",
            dependencies: [
                "BTEDomain", "BTECompute", "BTEStore", "BTEWorker", "BTEHTTP", "BTEOperations", "BTEModelRuns",
                "BTEModels",
                "Postgres",
                "Kafka",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            resources: [.copy("openapi.yaml")],
            swiftSettings: strict
        ),
        // Operators' commands: replay, rejects, status.
        .target(
            name: "BTEOperations",
            dependencies: ["BTEDomain", "BTECompute", "BTEStore", "Kafka"],
            swiftSettings: strict
        ),
        // Model runs for the CLI and the API: requests, fits and simulations recorded, experiment
        // analysis.
        .target(
            name: "BTEModelRuns", dependencies: ["BTEDomain", "BTEModels", "BTEStore"], swiftSettings: strict),
        // Generated streams: the demo stream of bte generate, the tests and the benchmarks.
        .target(name: "BTEFixtures", dependencies: ["BTEDomain", "Kafka"], swiftSettings: strict),
        // Command-line plumbing shared by the executables: settings, errors, logging.
        .target(
            name: "BTECLI",
            dependencies: [
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "bte",
            dependencies: [
                "BTECLI", "BTEIngest", "BTEProjection", "BTEFixtures", "BTEWorker", "BTEHTTP", "BTEStore", "BTEDomain",
                "BTECompute", "BTEIntents", "BTEOperations", "BTEModelRuns", "BTEAPI", "BTEModels", "Kafka", "Postgres",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        // Performance is measured here, never asserted in tests.
        .executableTarget(
            name: "bte-bench",
            dependencies: [
                "BTECLI", "BTEIngest", "BTEProjection", "BTEFixtures", "BTEWorker", "BTEStore", "BTEDomain", "Kafka",
                "Postgres", "BTEModels",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "BTETestSupport",
            dependencies: [
                "Kafka", "Postgres", "BTEDomain", "BTEStore", "BTEIngest", "BTEFixtures",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/BTETestSupport",
            swiftSettings: strict
        ),
        .testTarget(
            name: "BTEDomainTests",
            dependencies: ["BTEDomain", .product(name: "PropertyBased", package: "swift-property-based")],
            swiftSettings: strict
        ),
        .testTarget(name: "BTECLITests", dependencies: ["BTECLI"], swiftSettings: strict),
        // The repository's configuration (alerts, dashboard, deployment) checked against the code.
        .testTarget(name: "RepositoryTests", swiftSettings: strict),
        .testTarget(
            name: "BTEOperationsTests",
            dependencies: [
                "BTEOperations", "BTEModelRuns", "BTEDomain", "BTEModels",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "BTEAPITests",
            dependencies: [
                "BTEAPI", "BTEDomain", "BTEOperations", "BTEModelRuns", "BTEModels", "BTEStore",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "BTEComputeTests",
            dependencies: [
                "BTECompute", "BTEDomain", .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "BTEIntentTelemetryTests",
            dependencies: [
                "BTEIntentTelemetry", "BTEDomain", .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "BTEIntentsTests", dependencies: ["BTEIntents", "BTEDomain"], swiftSettings: strict),
        .testTarget(
            name: "BTEModelsTests", dependencies: ["BTEModels"], resources: [.copy("Fixtures")], swiftSettings: strict
        ),
        .testTarget(
            name: "BTEIngestTests",
            dependencies: [
                "BTEIngest", "BTEWorker", "BTEStore", "Kafka",
                .product(name: "PropertyBased", package: "swift-property-based"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "WrapperTests",
            dependencies: [
                "Kafka", "Postgres", "BTETestSupport", .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "BTEStore", "BTEOperations", "BTEModelRuns", "BTEDomain", "BTECompute", "BTEIntents", "BTEIngest",
                "BTEProjection",
                "BTEFixtures", "BTEModels", "BTEAPI",
                "BTEWorker", "Kafka", "Postgres", "BTETestSupport",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)

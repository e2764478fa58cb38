// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "bte",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "bte", targets: ["bte"]),
        // For producers (the orchestrator): PII-safe intent telemetry records.
        .library(name: "BTEIntentTelemetry", targets: ["BTEIntentTelemetry"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", exact: "2.4.1"),
        .package(url: "https://github.com/apple/swift-crypto", exact: "3.12.3"),
    ],
    targets: [
        // C libraries, seen only by the wrappers.
        .systemLibrary(name: "CRdKafka", pkgConfig: "rdkafka", providers: [.apt(["librdkafka-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        // Safe wrappers with no BTE knowledge.
        .target(name: "Kafka", dependencies: ["CRdKafka"], swiftSettings: strict),
        .target(name: "Postgres", dependencies: ["CLibPQ"], swiftSettings: strict),
        // Pure domain: events, JSON, validation. No I/O, Foundation at most.
        .target(name: "BTEDomain", swiftSettings: strict),
        // Pure computations (signals, later vectors and insights): no I/O, no clock. It may
        // depend on BTEDomain only; a test checks the package graph keeps it that way.
        .target(name: "BTECompute", dependencies: ["BTEDomain"], swiftSettings: strict),
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
        // Migrations, log appender, offsets.
        .target(
            name: "BTEStore",
            dependencies: ["BTEDomain", "BTECompute", "BTEIntents", "Postgres"],
            resources: [.copy("Migrations")],
            swiftSettings: strict
        ),
        // Long-running workers and commands built from the parts above.
        .target(
            name: "BTEPipeline",
            dependencies: [
                "BTEDomain", "BTECompute", "BTEIntents", "BTEStore", "Kafka",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "bte",
            dependencies: [
                "BTEPipeline", "BTEStore", "BTEDomain", "BTECompute", "BTEIntents", "Kafka", "Postgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "BTETestSupport",
            dependencies: ["Kafka", "Postgres", "BTEDomain", "BTEStore", "BTEPipeline", .product(name: "Logging", package: "swift-log")],
            path: "Tests/BTETestSupport",
            swiftSettings: strict
        ),
        .testTarget(name: "BTEDomainTests", dependencies: ["BTEDomain"], swiftSettings: strict),
        .testTarget(name: "BTEComputeTests", dependencies: ["BTECompute", "BTEDomain"], swiftSettings: strict),
        .testTarget(name: "BTEIntentTelemetryTests", dependencies: ["BTEIntentTelemetry", "BTEDomain"], swiftSettings: strict),
        .testTarget(name: "BTEIntentsTests", dependencies: ["BTEIntents", "BTEDomain"], swiftSettings: strict),
        .testTarget(name: "BTEPipelineTests", dependencies: ["BTEPipeline", "BTEStore", "Kafka"], swiftSettings: strict),
        .testTarget(name: "WrapperTests", dependencies: ["Kafka", "Postgres", "BTETestSupport"], swiftSettings: strict),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "BTEStore", "BTEDomain", "BTECompute", "BTEIntents", "BTEPipeline", "Kafka", "Postgres", "BTETestSupport",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)

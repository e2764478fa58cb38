import Foundation
import Testing

/// The alerts, the dashboard and the docs name only metrics the code exports, and every exported
/// metric is documented: renaming one in the code fails here, not silently in production.
@Suite struct MonitoringConfigTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func read(_ path: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    }

    static func matches(_ pattern: String, in text: String) throws -> [String] {
        let regex = try NSRegularExpression(pattern: pattern)
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap {
            Range($0.range(at: 1), in: text).map { String(text[$0]) }
        }
    }

    /// Every `label: "bte_…"` in Sources.
    static func exported() throws -> Set<String> {
        var names: Set<String> = []
        let sources = root.appendingPathComponent("Sources")
        guard let walker = FileManager.default.enumerator(atPath: sources.path) else { return [] }
        for case let path as String in walker where path.hasSuffix(".swift") && !path.hasPrefix("bte-bench/") {
            let text = try String(contentsOf: sources.appendingPathComponent(path), encoding: .utf8)
            names.formUnion(try matches(#"label:\s*"(bte_[a-z0-9_]+)""#, in: text))
        }
        return names
    }

    /// A histogram's series carry `_bucket`, `_count` and `_sum`.
    static func base(_ name: String) -> String {
        for suffix in ["_bucket", "_count", "_sum"] where name.hasSuffix(suffix) {
            return String(name.dropLast(suffix.count))
        }
        return name
    }

    @Test func exportsWhatTheDocsAlertsAndDashboardUse() throws {
        let exported = try Self.exported()
        #expect(exported.count >= 20, "\(exported.sorted())")
        for file in [
            "deploy/prometheus/alerts.yml", "deploy/prometheus/alerts.test.yml", "deploy/grafana/bte-dashboard.json",
        ] {
            let used = Set(try Self.matches(#"\b(bte_[a-z0-9_]+)\b"#, in: try Self.read(file)).map(Self.base))
            #expect(!used.isEmpty, "\(file) names no metric")
            #expect(
                used.subtracting(exported).isEmpty,
                "\(file) names metrics nobody exports: \(used.subtracting(exported).sorted())")
        }
        let docs = try Self.read("docs/operations.md")
        for name in exported.sorted() {
            #expect(docs.contains("`\(name)`"), "\(name) is exported but not in docs/operations.md#metrics")
        }
    }

    @Test func theDashboardIsAGrafanaDashboardWithAQueryPerPanel() throws {
        let data = Data(try Self.read("deploy/grafana/bte-dashboard.json").utf8)
        let dashboard = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(dashboard["uid"] as? String == "bte-overview")
        let panels = dashboard["panels"] as? [[String: Any]] ?? []
        #expect(panels.count >= 8)
        for panel in panels {
            let targets = panel["targets"] as? [[String: Any]] ?? []
            #expect(!targets.isEmpty, "\(panel["title"] ?? "?") has no query")
            #expect(targets.allSatisfy { ($0["expr"] as? String)?.contains("bte_") == true })
        }
        // Every alert's metrics also have a panel.
        let alerts = Set(
            try Self.matches(#"\b(bte_[a-z0-9_]+)\b"#, in: try Self.read("deploy/prometheus/alerts.yml")).map(Self.base)
        )
        let charted = Set(
            try Self.matches(#"\b(bte_[a-z0-9_]+)\b"#, in: String(decoding: data, as: UTF8.self)).map(Self.base))
        #expect(alerts.subtracting(charted).isEmpty, "alerted but not charted: \(alerts.subtracting(charted).sorted())")
    }
}

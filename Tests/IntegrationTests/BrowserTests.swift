import BTETestSupport
import Foundation
import Testing

/// The dashboard in a real headless browser (Debian's chromium and chromium-driver, driven by
/// Selenium; installed by scripts/test.sh): it signs in through the form, renders its charts,
/// logs nothing to the console, and shows the numbers the API answers.
@Suite(.serialized) struct BrowserTests {
    @Test func dashboardRendersTheAPIsNumbersWithoutConsoleErrors() throws {
        let f = try ReadAPITests.fixture()
        defer {
            f.server.signal(SIGKILL)
            f.db.drop()
        }
        // What the API says: the latest value of each signal.
        let api = ReadAPITests.get(f.port, "/v1/workspaces/\(ReadAPITests.workspace)/signals", key: f.read)
        let parsed = try JSONSerialization.jsonObject(with: Data(api.body.utf8)) as? [String: Any]
        var expected: [String: String] = [:]
        for signal in parsed?["signals"] as? [[String: Any]] ?? [] {
            if let type = signal["signal_type"] as? String, let value = signal["signal_value"] as? NSNumber {
                expected[type] = value.stringValue
            }
        }
        // Hand-computed from the fixture: momentum's latest is 2.5 (thresholds v2), drop_off_point 3.
        #expect(expected == ["momentum": "2.5", "drop_off_point": "3"])

        // An operator key: the page has the pipeline's figures too.
        let operatorKey = try APITests.createKey(f.db, scope: "operator", rate: 100)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", TestEnvironment.packageRoot.appendingPathComponent("Tests/Browser/dashboard_check.py").path,
            "--url", "http://127.0.0.1:\(f.port)", "--key", operatorKey,
        ]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(stderr.suffix(4_000))")
        let page = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]

        #expect(page["signed_out_form"] as? Bool == true)
        #expect(page["title"] as? String == "BTE dashboard")
        #expect(page["workspace"] as? String == ReadAPITests.workspace)
        // The sign-in page's only message is its own 401 (not signed in yet).
        let signIn = page["sign_in_console"] as? [[String: Any]] ?? []
        #expect(
            signIn.allSatisfy { ($0["message"] as? String ?? "").hasSuffix("status of 401 (Unauthorized)") },
            "sign-in console: \(signIn)")
        let console = page["console"] as? [[String: Any]] ?? []
        #expect(console.isEmpty, "console: \(console)")
        let signals = page["signals"] as? [String: [String: Any]] ?? [:]
        #expect(Set(signals.keys) == Set(expected.keys))
        for (type, value) in expected {
            let shown = signals[type] ?? [:]
            #expect(shown["value"] as? String == value, "\(type): \(shown)")
            #expect(shown["chart_displayed"] as? Bool == true)
            #expect((shown["chart_width"] as? Double ?? 0) == 120 && (shown["chart_height"] as? Double ?? 0) == 24)
        }
        // momentum has 3 stored values in 30 days, drop_off_point 1: one point each.
        #expect(signals["momentum"]?["points"] as? Int == 3)
        #expect(signals["drop_off_point"]?["points"] as? Int == 1)
        let insightID = OutputRecords.insightID(
            workspace: ReadAPITests.workspace, type: "deal_stalled", asOf: ReadAPITests.midnight(daysAgo: 1))
        #expect(page["insights"] as? [String] == [insightID])
        #expect(page["groups"] as? [String] == ["bte-ingest", "bte-projector", "bte-sink"])
    }
}

import BTETestSupport
import Foundation
import Testing

/// schemathesis generates requests from `openapi.yaml` (as served at /openapi.json) and checks
/// every response against it: declared status codes, content types, headers and bodies, no 5xx
/// for any input, 405 for methods a path does not have. The spec and the server can't drift.
@Suite(.serialized) struct SchemathesisTests {
    @Test func everyResponseMatchesTheSpec() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let key = try APITests.createKey(db, scope: "admin", rate: 100_000)
        let port = freePort()
        // With the models endpoints live: fuzzed model requests run as jobs against an empty workspace.
        let server = try APITests.serve(db, topics, port: port, extra: ["--database-url", db.ingestURL])
        defer { server.signal(SIGKILL) }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "schemathesis", "run", "http://127.0.0.1:\(port)/openapi.json", "--header", "Authorization: Bearer \(key)",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
                + "response_schema_conformance,unsupported_method",
            // Valid and invalid inputs both: the server answers each as the spec says and stays up.
            "--mode", "all", "--max-examples", "100", "--seed", "1", "--no-color",
            // An event stream lasts until the client leaves; InsightStreamTests covers it.
            "--exclude-operation-id", "getInsightStream",
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(
            process.terminationStatus == 0,
            "schemathesis (installed by scripts/test.sh) found failures:\n\(text.suffix(6_000))")
        #expect(text.contains("passed"), "\(text.suffix(2_000))")
        #expect(httpGet(port: port, path: "/healthz")?.status == 200, "\(server.log.suffix(2_000))")
    }
}

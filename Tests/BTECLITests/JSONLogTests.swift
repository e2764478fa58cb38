import Foundation
import Logging
import Testing

@testable import BTECLI

struct JSONLogTests {
    @Test func oneObjectALineWithTheEventsCoordinates() {
        // 2026-03-01T10:00:00.000001Z = 1772359200 s + 1 µs.
        let line = JSONLogHandler.line(
            level: .warning, message: "rejected \"x\"\n", metadata: ["source": "t/2@17", "code": "missing_field"],
            label: "bte.ingest", base: ["group": "bte-ingest"],
            now: Date(timeIntervalSince1970: 1_772_359_200.000_001_5))
        #expect(
            line
                == #"{"time":"2026-03-01T10:00:00.000001Z","level":"warning","worker":"bte.ingest","#
                + #""message":"rejected \"x\"\n","code":"missing_field","group":"bte-ingest","source":"t/2@17"}"#)
        // Control characters are escaped; a metadata key can't shadow the fixed fields.
        let other = JSONLogHandler.line(
            level: .info, message: "a\u{1}b", metadata: ["level": "fake"], label: "l", base: [:],
            now: Date(timeIntervalSince1970: 0))
        #expect(other == #"{"time":"1970-01-01T00:00:00.000000Z","level":"info","worker":"l","message":"a\u0001b"}"#)
    }

    @Test func aFormatThatIsNoneIsRefused() {
        #expect(throws: (any Error).self) { try LoggingBootstrap.checkFormat("yaml") }
        #expect(throws: Never.self) { try LoggingBootstrap.checkFormat("json") }
        #expect(throws: Never.self) { try LoggingBootstrap.checkFormat("text") }
    }
}

import BTEDomain
import BTEIngest
import Foundation
import PropertyBased
import Testing

@testable import BTEStore

/// The files of `bte rejects export` and `redrive --fixed`: what one writes, the other reads.
struct RejectFileTests {
    static func reject(_ id: Int64, _ payload: [UInt8]?) -> StoredReject {
        StoredReject(
            id: id, topic: "bte.interaction-events.v1", partition: 0, offset: 7, key: nil, payload: payload,
            payloadBytes: payload?.count ?? 0, payloadKept: payload != nil, code: "missing_field", message: "m",
            rejectedAt: "2026-03-01T10:00:00Z", lastRedrive: nil)
    }

    @Test func rejectIDsAreNumbersOrStringsOfDigits() throws {
        let fixed = try RejectRedrive.parseFixed(
            """
            {"reject_id": 12, "record": {"a": 1}}
            {"reject_id": "13", "record": {"b": 2}}

            {"reject_id":"9223372036854775807","record":{}}
            """)
        #expect(fixed[12] == Array(#"{"a":1}"#.utf8))
        #expect(fixed[13] == Array(#"{"b":2}"#.utf8))
        #expect(fixed[Int64.max] == Array("{}".utf8))
        #expect(fixed.count == 3)
        // The same reject as a number and as a string is named twice.
        #expect(throws: RedriveError.self) {
            try RejectRedrive.parseFixed("{\"reject_id\":5,\"record\":{}}\n{\"reject_id\":\"5\",\"record\":{}}")
        }
    }

    @Test func badRejectIDsNameTheirLine() {
        // 2^63 = 9,223,372,036,854,775,808 is one past Int64.max.
        let bad = [
            #""99999999999999999999""#, "99999999999999999999", #""9223372036854775808""#, "0", #""0""#, "-5",
            #""-5""#, "1.5", "1e3", #""12a""#, #""""#, #"" 12""#, "null", #""١٢""#,
        ]
        for id in bad {
            let text = "{\"reject_id\":1,\"record\":{}}\n\n{\"reject_id\":\(id),\"record\":{}}"
            do {
                _ = try RejectRedrive.parseFixed(text)
                Issue.record("accepted reject_id \(id)")
            } catch {
                #expect("\(error)".contains("line 3"), "\(id): \(error)")
                #expect("\(error)".contains("reject_id"), "\(id): \(error)")
            }
        }
    }

    @Test func exportedLinesReadBackAsTheirRecords() throws {
        let record = Array(#"{"user_id":"u-1","event_id":"e","n":1.50}"#.utf8)
        // The record in canonical form: keys sorted by their bytes, 1.50 as 1.5.
        #expect(
            RejectExport.line(Self.reject(42, record))
                == #"{"reject_id":42,"record":{"event_id":"e","n":1.5,"user_id":"u-1"}}"#)
        // Not JSON, or JSON but not an object: the bytes in base64 ("{not json" → e25vdCBqc29u).
        #expect(
            RejectExport.line(Self.reject(43, Array("{not json".utf8)))
                == #"{"reject_id":43,"payload_base64":"e25vdCBqc29u"}"#)
        #expect(RejectExport.line(Self.reject(44, Array("[1]".utf8))) == #"{"reject_id":44,"payload_base64":"WzFd"}"#)
        #expect(RejectExport.line(Self.reject(45, [])) == #"{"reject_id":45,"payload_base64":""}"#)
        // No payload kept: no line.
        #expect(RejectExport.line(Self.reject(46, nil)) == nil)
        let line = try #require(RejectExport.line(Self.reject(42, record)))
        #expect(try RejectRedrive.parseFixed(line) == [42: Array(#"{"event_id":"e","n":1.5,"user_id":"u-1"}"#.utf8)])
        // A base64 line is for a person to turn into a record first.
        let base64 = try #require(RejectExport.line(Self.reject(43, Array("{not json".utf8))))
        do {
            _ = try RejectRedrive.parseFixed(base64)
            Issue.record("accepted a payload_base64 line")
        } catch {
            #expect("\(error)".contains("payload_base64"), "\(error)")
        }
    }

    @Test func anyDigitsParseExactlyWhenTheyFit() async {
        let digits = Gen.character(in: "0"..."9").string(of: 1...22)
        await propertyCheck(count: 2_000, input: digits, Gen.bool) { digits, quoted in
            let id = quoted ? "\"\(digits)\"" : digits
            let parsed = try? RejectRedrive.parseFixed("{\"reject_id\":\(id),\"record\":{}}")
            // JSON has no leading zeros in numbers; a string of digits may have them.
            let valid = (quoted || digits == "0" || !digits.hasPrefix("0")) ? Int64(digits) : nil
            let expected = valid.flatMap { $0 >= 1 ? [$0: Array("{}".utf8)] : nil }
            #expect(parsed == expected, "\(id)")
        }
        await propertyCheck(count: 2_000, input: Gen.ascii.string(of: 0...40)) { text in
            _ = try? RejectRedrive.parseFixed(text)
            _ = try? RejectRedrive.parseFixed("{\"reject_id\":\(text),\"record\":{}}")
            _ = try? RejectRedrive.parseFixed("{\"reject_id\":\"\(text)\",\"record\":{}}")
        }
    }
}

import BTEDomain
import HTTPTypes
import Hummingbird
import Testing

@testable import BTEAPI

/// Query parameters are outside input: a bad one is a 400 with a code, never a crash.
struct QueryParameterTests {
    func request(_ query: String) -> Request {
        Request(
            head: HTTPRequest(
                method: .get, scheme: "http", authority: "localhost", path: "/v1/workspaces/w/insights?\(query)"),
            body: RequestBody(buffer: ByteBuffer()))
    }

    func refusal(_ body: () throws -> Timestamp?) -> APIError? {
        do {
            _ = try body()
            return nil
        } catch let error as APIError {
            return error
        } catch {
            return nil
        }
    }

    @Test func hugeSinceDurationsAre400() throws {
        // 9,999,999,999,999 s is beyond Int64 microseconds; 99,999,999,999,999,999 weeks beyond
        // Int64 seconds. Both used to trap the server.
        for since in ["9999999999999s", "P99999999999999999W", "9223372036854775807s", "P1DT9223372036854775807S"] {
            let error = refusal { try APIServer.since(request("since=\(since)")) }
            #expect(error?.status == .badRequest, "\(since)")
            #expect(error?.code == "invalid_parameter", "\(since)")
        }
        // Long but representable: before 1970, outside the accepted range, so 400 as well.
        let old = refusal { try APIServer.since(request("since=9223372036854s")) }
        #expect(old?.code == "invalid_parameter")
    }

    @Test func sinceAndTimesThatParse() throws {
        #expect(
            try APIServer.since(request("since=2026-01-01T00:00:00Z"))
                == Timestamp(rfc3339: "2026-01-01T00:00:00Z"))
        #expect(try APIServer.since(request("other=1")) == nil)
        #expect(
            try APIServer.time(request("to=2026-01-01T00:00:00Z"), "to") == Timestamp(rfc3339: "2026-01-01T00:00:00Z"))
        // Year 9999 parses, but is outside the accepted range [1970, 2100).
        let late = refusal { try APIServer.time(request("to=9999-12-31T23:59:59.999999999Z"), "to") }
        #expect(late?.code == "invalid_parameter")
    }
}

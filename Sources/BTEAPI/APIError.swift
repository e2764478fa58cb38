import BTEDomain
import Foundation
import Hummingbird

/// An error reply: `{"error":{"code":…, "message":…}}` with its status (and headers, e.g.
/// `Retry-After`).
public struct APIError: Error, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    /// The reply: the JSON body, its status and headers.
    var response: Response {
        var fields: HTTPFields = [.contentType: "application/json"]
        fields.append(contentsOf: headers)
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }

    var body: String {
        "{\"error\":{\"code\":\(JSONValue.quoted(code)),\"message\":\(JSONValue.quoted(message))}}"
    }

    static let unauthorized = APIError(
        .unauthorized, "unauthorized", "a valid API key is required: Authorization: Bearer <key>")

    static let idempotencyKeyReused = APIError(
        .unprocessableContent, "idempotency_key_reused",
        "this Idempotency-Key was used in the last 24 hours for a different request")

    static func forbidden(_ scope: String) -> APIError {
        APIError(
            .forbidden, "insufficient_scope",
            "this endpoint needs a key with scope \(scope == "admin" ? "admin" : "\(scope) or admin")")
    }
}

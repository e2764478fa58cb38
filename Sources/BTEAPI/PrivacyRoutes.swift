import BTEDomain
import BTEStore
import Hummingbird
import Kafka

/// A privacy request's body: `{"type": …, "user_ids": […], "reference": …}`. Pure, so it can
/// be driven with any bytes.
public struct PrivacyRequestBody: Sendable, Equatable {
    public var type: PrivacyRequestType
    public var userIDs: [String]
    public var reference: String?

    public static func parse(_ body: [UInt8]) throws(APIError) -> PrivacyRequestBody {
        func invalid(_ message: String) -> APIError { APIError(.badRequest, "invalid_body", message) }
        guard case .object(let members)? = try? JSONParser.parse(body) else {
            throw invalid("the body is a JSON object")
        }
        func value(_ key: String) -> JSONValue? { members.last { $0.key == key }?.value }
        let types = PrivacyRequestType.allCases.map(\.rawValue)
        guard case .string(let name)? = value("type"), let type = PrivacyRequestType(rawValue: name) else {
            throw invalid("type is one of \(types.joined(separator: ", "))")
        }
        guard case .array(let items)? = value("user_ids"), !items.isEmpty, items.count <= PrivacyStore.maxUsers else {
            throw invalid("user_ids is an array of 1 to \(PrivacyStore.maxUsers) user ids")
        }
        var users: [String] = []
        users.reserveCapacity(items.count)
        for item in items {
            guard case .string(let id) = item, !id.isEmpty, id.utf8.count <= PrivacyStore.maxUserIDBytes,
                !id.utf8.contains(0)
            else {
                throw invalid("each user id is a non-empty string of at most \(PrivacyStore.maxUserIDBytes) bytes")
            }
            users.append(id)
        }
        var reference: String?
        switch value("reference") {
        case nil, .null?: reference = nil
        case .string(let text)? where !text.isEmpty && text.utf8.count <= PrivacyStore.maxReferenceBytes:
            reference = text
        default:
            throw invalid("reference is a non-empty string of at most \(PrivacyStore.maxReferenceBytes) bytes")
        }
        return PrivacyRequestBody(type: type, userIDs: users, reference: reference)
    }
}

extension APIServer {
    func addPrivacyRoutes(to router: Router<APIRequestContext>) {
        router.post("v1/privacy/requests") { request, _ -> Response in
            await self.answer("privacy_request") {
                let key = try await self.authorize(request, scope: "admin")
                let parsed = try PrivacyRequestBody.parse(try await self.body(request))
                guard parsed.type != .export else {
                    throw APIError(
                        .unprocessableContent, "unsupported_request_type",
                        "an export is written by bte privacy export (NDJSON with a manifest; docs/privacy.md)")
                }
                let store = try self.privacyStore()
                let workspace = key.workspaceID
                let requester = "api-key:\(key.id)"
                do {
                    let (filed, _) = try await store.run {
                        try $0.file(
                            workspaceID: workspace, type: parsed.type, userIDs: parsed.userIDs,
                            reference: parsed.reference, by: requester)
                    }
                    if parsed.type == .erase || parsed.type == .eraseAndSuppress {
                        // The erased people's keys on the compacted vectors topic end with a
                        // tombstone; a retry of the request (same reference) publishes them again.
                        let topic = self.configuration.topicPrefix + OutputTopic.behavioralVectors.rawValue
                        let tombstones = parsed.userIDs.map {
                            KafkaOutgoingMessage(
                                topic: topic,
                                key: Array(
                                    UserKey(workspaceID: workspace, userID: canonicalUUID($0) ?? $0).topicKey.utf8),
                                value: nil)
                        }
                        do {
                            try await self.publisher.publish(tombstones)
                        } catch {
                            throw APIError(
                                .serviceUnavailable, "broker_unavailable",
                                "erased in PostgreSQL, but the broker did not acknowledge the tombstones for \(topic): "
                                    + "send the request again with its reference")
                        }
                    }
                    return json(
                        .accepted,
                        "{\"request_id\":\(JSONValue.quoted(filed.requestID)),"
                            + "\"status\":\(JSONValue.quoted(filed.status))}"
                    )
                } catch let error as StoreError {
                    switch error.code {
                    case .privacyRequestUnsupported:
                        throw APIError(.unprocessableContent, "unsupported_request_type", error.message)
                    case .privacyRequestConflict: throw APIError(.conflict, "reference_reused", error.message)
                    case .invalidPrivacyRequest: throw APIError(.badRequest, "invalid_body", error.message)
                    default: throw error
                    }
                }
            }
        }
        router.get("v1/privacy/requests/:request_id") { request, context -> Response in
            await self.answer("privacy_request_status") {
                let key = try await self.authorize(request, scope: "admin")
                let id = try context.parameters.require("request_id")
                let store = try self.privacyStore()
                let workspace = key.workspaceID
                guard let found = try await store.run({ try $0.request(id, workspaceID: workspace) }) else {
                    throw APIError.notFound("no privacy request \(id) in this workspace")
                }
                return json(.ok, Self.privacyRequestJSON(found))
            }
        }
    }

    func privacyStore() throws -> SerialClient<PrivacyStore> {
        guard let privacy else {
            throw APIError(
                .serviceUnavailable, "privacy_unavailable",
                "privacy requests need bte serve --database-url (a member of bte_privacy)")
        }
        return privacy
    }

    static func privacyRequestJSON(_ request: PrivacyRequest) -> String {
        let users = request.users.map {
            "{\"user_ref\":\(JSONValue.quoted($0.personRef)),\"status\":\(JSONValue.quoted($0.status)),"
                + "\"evidence\":\($0.evidence)}"
        }
        return
            "{\"request_id\":\(JSONValue.quoted(request.requestID)),"
            + "\"type\":\(JSONValue.quoted(request.type.rawValue)),"
            + "\"workspace_id\":\(JSONValue.quoted(request.workspaceID)),"
            + "\"status\":\(JSONValue.quoted(request.status)),"
            + "\"reference\":\(request.reference.map(JSONValue.quoted) ?? "null"),"
            + "\"received_at\":\(JSONValue.quoted(request.receivedAt)),\"due_at\":\(JSONValue.quoted(request.dueAt)),"
            + "\"users\":[\(users.joined(separator: ","))]}"
    }
}

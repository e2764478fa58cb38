import BTEDomain
import BTEStore
import Dispatch
import Foundation
import Hummingbird
import Kafka
import Synchronization

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

    /// An export request's NDJSON for one of its people, streamed from one snapshot on a session
    /// of its own, ending with the manifest line (a body without it was cut short). Each download
    /// is a read of the person's data and is recorded as one.
    func addPrivacyExportRoute(to router: Router<APIRequestContext>) {
        router.get("v1/privacy/requests/:request_id/export") { request, context -> Response in
            await self.answer("privacy_export") {
                let key = try await self.authorize(request, scope: "admin")
                let id = try context.parameters.require("request_id")
                guard let raw = request.uri.queryParameters.get("user_id"),
                    let person = try? PrivacyStore.normalizedUsers([String(raw)]).first
                else {
                    throw APIError(
                        .badRequest, "invalid_query",
                        "user_id is one of the request's user ids (at most \(PrivacyStore.maxUserIDBytes) bytes)")
                }
                let store = try self.privacyStore()
                guard let url = self.configuration.modelsURL else { throw APIError.privacyUnavailable }
                let user = UserKey(workspaceID: key.workspaceID, userID: person)
                let workspace = key.workspaceID
                guard let found = try await store.run({ try $0.request(id, workspaceID: workspace) }),
                    found.type == .export, found.personRefs.contains(PersonReference.of(user))
                else {
                    throw APIError.notFound("no export request \(id) for this user in this workspace")
                }
                try await self.readers.read {
                    try $0.recordAccess(
                        keyID: key.id, route: "GET /v1/privacy/requests/{request_id}/export", user: user)
                }
                let chunks = ExportChunks.start(url: url, request: found, userID: person)
                return Response(
                    status: .ok, headers: [.contentType: "application/x-ndjson", .cacheControl: "no-store"],
                    body: ResponseBody { writer in try await chunks.drain(into: &writer) })
            }
        }
    }

    func privacyStore() throws -> SerialClient<PrivacyStore> {
        guard let privacy else { throw APIError.privacyUnavailable }
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

extension APIError {
    static let privacyUnavailable = APIError(
        .serviceUnavailable, "privacy_unavailable",
        "privacy requests need bte serve --database-url (a member of bte_privacy)")
}

/// An export written by a thread of its own (its own PostgreSQL session: an export may take a
/// while and must not hold up other requests) and handed to the response as it goes. At most
/// `window` chunks wait, so a slow client holds back the export, not memory; a client that goes
/// away stops it.
final class ExportChunks: Sendable {
    static let chunkBytes = 1 << 16
    static let window = 4

    private let stream: AsyncThrowingStream<[UInt8], any Error>
    private let continuation: AsyncThrowingStream<[UInt8], any Error>.Continuation
    private let space = DispatchSemaphore(value: ExportChunks.window)
    private let stopped = Atomic<Bool>(false)

    private init() {
        (stream, continuation) = AsyncThrowingStream.makeStream()
    }

    static func start(url: String, request: PrivacyRequest, userID: String) -> ExportChunks {
        let chunks = ExportChunks()
        let thread = Thread {
            do {
                let store = try PrivacyStore(url: url)
                var buffer: [UInt8] = []
                buffer.reserveCapacity(chunkBytes)
                _ = try store.exportWithManifest(request, userID: userID) { line in
                    buffer += Array(line.utf8)
                    buffer.append(0x0A)
                    if buffer.count >= chunkBytes {
                        try chunks.send(buffer)
                        buffer.removeAll(keepingCapacity: true)
                    }
                }
                try chunks.send(buffer)
                chunks.continuation.finish()
            } catch {
                chunks.continuation.finish(throwing: error)
            }
        }
        thread.name = "bte.api.export"
        thread.start()
        return chunks
    }

    private func send(_ chunk: [UInt8]) throws {
        space.wait()
        guard !stopped.load(ordering: .acquiring) else { throw CancellationError() }
        continuation.yield(chunk)
    }

    func drain(into writer: inout any ResponseBodyWriter) async throws {
        defer {
            // Wakes a producer waiting for room, which then stops.
            stopped.store(true, ordering: .releasing)
            space.signal()
        }
        for try await chunk in stream {
            try await writer.write(ByteBuffer(bytes: chunk))
            space.signal()
        }
        try await writer.finish(nil)
    }
}

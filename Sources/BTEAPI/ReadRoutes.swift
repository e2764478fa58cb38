import BTECompute
import BTEDomain
import BTEOperations
import BTEStore
import BTEWorker
import Foundation
import HTTPTypes
import Hummingbird
import Metrics

/// The read endpoints (what `bte sink` stored) and insight feedback. Every read is scoped to the
/// key's workspace: anything else answers 404, as if it did not exist.
extension APIServer {
    static let signalTypes = SignalType.allCases.map(\.rawValue)
    static let insightTypes = InsightType.allCases.map(\.rawValue)
    /// Rows a history or insight list returns at most (the newest ones).
    static let maxListRows = 1_000
    static let day: Int64 = 86_400_000_000

    func addReadRoutes(to router: Router<APIRequestContext>, readiness: Readiness) {
        router.get("api/v1/behavioral-vectors/:user_id") { request, context -> Response in
            await self.answer("vector") {
                let key = try await self.authorize(request, scope: "read")
                let user = UserKey(workspaceID: key.workspaceID, userID: try context.parameters.require("user_id"))
                let record = try await self.readers.read {
                    try $0.recordAccess(keyID: key.id, route: "GET /api/v1/behavioral-vectors/{user_id}", user: user)
                    return try $0.latestVector(user: user)
                }
                guard let record else {
                    throw APIError.notFound("no behavioral vector for this user in this workspace")
                }
                return json(.ok, record)
            }
        }
        router.get("api/v1/analytics/engagement/:user_id") { request, context -> Response in
            await self.answer("engagement") {
                let key = try await self.authorize(request, scope: "read")
                let user = UserKey(workspaceID: key.workspaceID, userID: try context.parameters.require("user_id"))
                let now = Self.now()
                // The 30 UTC days ending with today.
                let today = now.microseconds - now.microseconds % Self.day
                let from = Timestamp(microseconds: today - 29 * Self.day)
                let to = Timestamp(microseconds: today + Self.day)
                let found = try await self.readers.read { reader -> (String, [(day: String, record: String)])? in
                    try reader.recordAccess(
                        keyID: key.id, route: "GET /api/v1/analytics/engagement/{user_id}", user: user)
                    // Per-person analytics stop with the person's consent to them.
                    guard try reader.consents(user, to: .analytics, at: now),
                        let latest = try reader.latestVector(user: user)
                    else { return nil }
                    return (latest, try reader.dailyVectors(user: user, from: from, to: to))
                }
                guard let (latest, days) = found else {
                    throw APIError.notFound("no engagement for this user in this workspace")
                }
                return json(.ok, Self.engagement(user: user.userID, latest: latest, days: days))
            }
        }
        router.get("v1/workspaces/:workspace_id/signals") { request, context -> Response in
            await self.answer("signals") {
                let workspace = try await self.workspace(request, context, scope: "read")
                let records = try await self.readers.read { try $0.latestSignals(workspaceID: workspace) }
                return json(
                    .ok,
                    "{\"workspace_id\":\(JSONValue.quoted(workspace)),\"signals\":[\(records.joined(separator: ","))]}")
            }
        }
        router.get("v1/workspaces/:workspace_id/signals/:name/history") { request, context -> Response in
            await self.answer("signal_history") {
                let workspace = try await self.workspace(request, context, scope: "read")
                let name = try context.parameters.require("name")
                guard Self.signalTypes.contains(name) else {
                    throw APIError.notFound(
                        "no signal named \(name); signals: \(Self.signalTypes.joined(separator: ", "))")
                }
                let now = Self.now()
                let to = try Self.time(request, "to") ?? now
                let from = try Self.time(request, "from") ?? Timestamp(microseconds: to.microseconds - 30 * Self.day)
                guard from <= to else { throw APIError(.badRequest, "invalid_parameter", "from is after to") }
                let limit = Self.maxListRows
                let (records, truncated) = try await self.readers.read {
                    try $0.signalHistory(workspaceID: workspace, signalType: name, from: from, to: to, limit: limit)
                }
                return json(
                    .ok,
                    "{\"workspace_id\":\(JSONValue.quoted(workspace)),\"signal_type\":\(JSONValue.quoted(name)),"
                        + "\"from\":\(JSONValue.quoted(from.rfc3339)),\"to\":\(JSONValue.quoted(to.rfc3339)),"
                        + "\"truncated\":\(truncated),\"values\":[\(records.joined(separator: ","))]}")
            }
        }
        router.get("v1/workspaces/:workspace_id/insights") { request, context -> Response in
            await self.answer("insights") {
                let workspace = try await self.workspace(request, context, scope: "read")
                let since = try Self.since(request) ?? Timestamp(microseconds: Self.now().microseconds - 30 * Self.day)
                let limit = Self.maxListRows
                let (records, truncated) = try await self.readers.read {
                    try $0.insights(workspaceID: workspace, since: since, limit: limit)
                }
                return json(
                    .ok,
                    "{\"workspace_id\":\(JSONValue.quoted(workspace)),\"since\":\(JSONValue.quoted(since.rfc3339)),"
                        + "\"truncated\":\(truncated),\"insights\":[\(records.joined(separator: ","))]}")
            }
        }
        router.get("v1/users/:user_id/insights/pending") { request, context -> Response in
            await self.answer("pending_insights") {
                let key = try await self.authorize(request, scope: "read")
                let user = UserKey(workspaceID: key.workspaceID, userID: try context.parameters.require("user_id"))
                let since = try Self.since(request) ?? Timestamp(microseconds: Self.now().microseconds - Self.day)
                let limit = Self.maxListRows
                let (records, truncated) = try await self.readers.read {
                    try $0.recordAccess(keyID: key.id, route: "GET /v1/users/{user_id}/insights/pending", user: user)
                    return try $0.deliveries(user: user, since: since, limit: limit)
                }
                return json(
                    .ok,
                    "{\"user_id\":\(JSONValue.quoted(user.userID)),\"since\":\(JSONValue.quoted(since.rfc3339)),"
                        + "\"truncated\":\(truncated),\"deliveries\":[\(records.joined(separator: ","))]}")
            }
        }
        router.get("v1/users/:user_id/insights/stream") { request, context -> Response in
            await self.answer("insight_stream") {
                let key = try await self.authorize(request, scope: "read")
                let user = UserKey(workspaceID: key.workspaceID, userID: try context.parameters.require("user_id"))
                let lastEventID = Self.lastEventID.flatMap { request.headers[$0] }
                let start = try await self.readers.read {
                    try $0.recordAccess(keyID: key.id, route: "GET /v1/users/{user_id}/insights/stream", user: user)
                    return try $0.deliveryCursor(user: user, after: lastEventID)
                }
                return Response(
                    status: .ok,
                    headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                    body: ResponseBody { writer in
                        try await self.stream(user: user, after: start, to: &writer)
                    })
            }
        }
        router.post("v1/insights/:insight_id/feedback") { request, context -> Response in
            await self.answer("insight_feedback") {
                let key = try await self.authorize(request, scope: "admin")
                let body = try await self.body(request)
                let insightID = try context.parameters.require("insight_id").lowercased()
                let workspace = key.workspaceID.lowercased()
                let idempotency = try idempotencyKey(request)
                let name = "\(workspace)|feedback|\(insightID)|\(idempotency ?? "")"
                if idempotency != nil, let repeated = try self.repeatedReply(name, body: body) {
                    return repeated
                }
                let found = try await self.readers.read { reader -> (String, String)? in
                    guard let insight = try reader.insight(id: insightID), insight.workspaceID == workspace else {
                        return nil
                    }
                    let subVertical = try reader.subVertical(workspaceID: workspace)
                    return (insight.insightType, subVertical ?? "00000000-0000-0000-0000-000000000000")
                }
                guard let (insightType, subVertical) = found else {
                    throw APIError.notFound("no insight with this id in this workspace")
                }
                let feedback = try self.collector.feedback(
                    body: body, insightID: insightID, insightType: insightType, workspaceID: workspace,
                    subVerticalID: subVertical, idempotencyKey: idempotency
                ).get()
                try await self.publish([feedback.message], readiness: readiness)
                let reply =
                    "{\"event_id\":\(JSONValue.quoted(feedback.eventID)),\"insight_id\":\(JSONValue.quoted(insightID)),"
                    + "\"verdict\":\(JSONValue.quoted(feedback.verdict)),\"success\":true}"
                if idempotency != nil { self.replies.store(name, request: body, reply: reply) }
                return json(.ok, reply)
            }
        }
    }

    /// The path's workspace if it is the key's (lowercase); 404 otherwise, whether or not it exists.
    func workspace(_ request: Request, _ context: APIRequestContext, scope: String) async throws -> String {
        let key = try await authorize(request, scope: scope)
        let asked = try context.parameters.require("workspace_id").lowercased()
        guard asked == key.workspaceID.lowercased() else { throw APIError.notFound("no such workspace") }
        return asked
    }

    static func now() -> Timestamp { Timestamp(microseconds: Int64(Date().timeIntervalSince1970 * 1_000_000)) }

    /// An RFC 3339 query parameter (with its zone); nil when absent.
    static func time(_ request: Request, _ name: String) throws -> Timestamp? {
        guard let text = request.uri.queryParameters.get(name) else { return nil }
        guard let time = Timestamp(rfc3339: text), Timestamp.acceptedRange.contains(time) else {
            throw APIError(
                .badRequest, "invalid_parameter",
                "\(name) must be an RFC 3339 time with its zone, e.g. 2026-11-01T00:00:00Z")
        }
        return time
    }

    /// `since`: an RFC 3339 time, or a duration back from now (90m, 36h, 7d, 2w, P7D).
    static func since(_ request: Request) throws -> Timestamp? {
        guard let text = request.uri.queryParameters.get("since") else { return nil }
        guard let since = try? parseSince(text, nowMilliseconds: now().microseconds / 1000),
            Timestamp.acceptedRange.contains(since)
        else {
            throw APIError(
                .badRequest, "invalid_parameter",
                "since must be an RFC 3339 time with its zone or a duration such as 7d")
        }
        return since
    }

    /// Seed 001's engagement block from the latest vector, plus one entry per day with a vector.
    static func engagement(user: String, latest: String, days: [(day: String, record: String)]) -> String {
        func metrics(_ record: String) -> [(key: String, value: JSONValue)] {
            guard let parsed = try? JSONParser.parse(Array(record.utf8)),
                case .object(let members)? = parsed["engagement_metrics"]
            else { return [] }
            return members
        }
        func write(_ members: [(key: String, value: JSONValue)]) -> String {
            members.map { "\(JSONValue.quoted($0.key)):\(String(decoding: $0.value.canonicalBytes(), as: UTF8.self))" }
                .joined(separator: ",")
        }
        var asOf = "null"
        if let parsed = try? JSONParser.parse(Array(latest.utf8)), case .string(let text)? = parsed["as_of"] {
            asOf = JSONValue.quoted(text)
        }
        let history = days.map { day in
            "{" + write([(key: "date", value: .string(day.day))] + metrics(day.record)) + "}"
        }
        return "{" + write([(key: "user_id", value: .string(user))] + metrics(latest)) + ",\"as_of\":\(asOf),"
            + "\"history\":[\(history.joined(separator: ","))]}"
    }

    /// Server-Sent Events of the user's deliveries stored after `cursor`: `id` is the delivery's,
    /// so a client's `Last-Event-ID` resumes exactly after it; a comment line every 15 s keeps
    /// proxies and the client aware the stream lives. The stream first reads what was stored
    /// after the cursor, then follows the server's shared feed; it ends when the client goes
    /// away, or when it fell `streamBuffer` deliveries behind (the client resumes).
    func stream(user: UserKey, after cursor: Int64, to writer: inout any ResponseBodyWriter) async throws {
        let subscription = try await feed.subscribe(user)
        do {
            try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
            var last = cursor
            while true {
                let from = last
                let rows = try await readers.read { try $0.deliveries(user: user, after: from, limit: 100) }
                for row in rows { try await send(row, after: &last, to: &writer) }
                if rows.count < 100 { break }
            }
            for await item in subscription.items {
                switch item {
                case .delivery(let row): try await send(row, after: &last, to: &writer)
                case .heartbeat: try await writer.write(ByteBuffer(string: ": heartbeat\n\n"))
                }
            }
        } catch {
            await feed.cancel(user, subscription.id)
            throw error
        }
        await feed.cancel(user, subscription.id)
        try await writer.finish(nil)
    }

    /// Writes a delivery the stream has not sent (the catch-up and the feed may both read it).
    private func send(
        _ row: ProjectionReader.StreamedDelivery, after last: inout Int64, to writer: inout any ResponseBodyWriter
    ) async throws {
        guard row.seq > last else { return }
        last = row.seq
        let age = Self.now().microseconds - row.decidedAt.microseconds
        // An interrupt is for the moment it was decided; one found on a late resume is stale,
        // and popping it up now would interrupt for nothing.
        if row.interrupt, age > Self.staleInterrupt {
            Counter(label: "bte_insight_stream_expired_total").increment()
            return
        }
        try await writer.write(ByteBuffer(string: "id: \(row.id)\nevent: insight\ndata: \(row.record)\n\n"))
        Metrics.Timer(label: "bte_insight_stream_delay_seconds").recordMicroseconds(max(0, age))
    }

    static let heartbeat = Duration.seconds(15)
    /// A valid field name, so never nil; without it a stream would start from now.
    static let lastEventID = HTTPField.Name("Last-Event-ID")
    static let streamPoll = Duration.milliseconds(100)
    /// Deliveries a stream may be behind its client before it is ended (the client resumes).
    static let streamBuffer = 256
    /// Ten minutes in microseconds.
    static let staleInterrupt: Int64 = 600_000_000
}

extension APIError {
    static func notFound(_ message: String) -> APIError { APIError(.notFound, "not_found", message) }
}

import BTEDomain
import BTEHTTP
import BTEOperations
import BTEStore
import BTEWorker
import Foundation
import HTTPTypes
import Hummingbird
import Kafka
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

/// `bte serve`: the HTTP API on Hummingbird. Collect endpoints validate like ingest, check the
/// key's workspace and answer only once the broker acknowledged what they accepted.
public struct APIServer: Sendable {
    public struct Configuration: Sendable {
        public var host = "127.0.0.1"
        public var port = 8080
        public var brokers: String
        public var readerURL: String
        public var topicPrefix = ""
        public var limits = ValidationLimits()
        public var kafkaProperties: [String: String] = [:]
        /// How long the broker may take to acknowledge before a request gets 503.
        public var deliveryTimeoutMilliseconds = 5_000
        /// How long a key is remembered: a revocation takes effect within this.
        public var keyCacheSeconds = 2
        /// A connection that sends nothing for this long (a request head or body left unfinished,
        /// or idle between requests) is closed; a body must arrive whole within this many
        /// seconds times ``bodyTimeoutFactor``. Slow clients can't hold connections open.
        public var readTimeoutSeconds = 10
        public static let bodyTimeoutFactor = 3
        /// PostgreSQL connections (as the reader) serving the read endpoints.
        public var readerConnections = 4
        /// A member of bte_models for the models endpoints; without it they answer 503.
        public var modelsURL: String?
        /// How long a model request waits for its job before it is answered 202.
        public var jobWaitMilliseconds = 2_000
        /// Model jobs computed at once (each on its own PostgreSQL connection).
        public var modelWorkers = 2
        /// A job running longer than this is reported failed (its server stopped).
        public var jobDeadlineSeconds = 600
        /// Model jobs one workspace may have running or queued on this server (429 past it), and
        /// all workspaces together (503 past it).
        public var maxJobsPerWorkspace = 4
        public var maxJobs = 32
        /// Open connections; one more is closed as soon as it is accepted.
        public var maxConnections = 1_000
        /// A request must arrive whole (head and body) within this many seconds of its
        /// connection opening or the previous request's end, or the connection is closed.
        public var requestTimeoutSeconds = 60
        /// Failed authentications per client address: this many a second on average, up to
        /// the burst at once; past it, 429 without a lookup.
        public var failedAuthenticationsPerSecond = 5
        public var failedAuthenticationBurst = 20
        /// The projectors' metrics endpoints, whose produce → publish histogram the dashboard
        /// shows as freshness.
        public var projectorMetricsURLs: [String] = []

        public init(brokers: String, readerURL: String) {
            self.brokers = brokers
            self.readerURL = readerURL
        }
    }

    let configuration: Configuration
    let collector: Collector
    let keys: KeyDirectory
    let limiter = RateLimiter<Int64>()
    let failures = RateLimiter<String>(capacity: 10_000)
    let connections: ConnectionGate
    let replies = IdempotentReplies()
    let publisher: EventPublisher
    let vectors: VectorReader
    let readers: ReaderPool
    let feed: DeliveryFeed
    let projectorFreshness: ProjectorFreshness
    let sessions = DashboardSessions()
    let operations: OperationsSnapshot
    let spec: [UInt8]
    let models: ModelService?
    /// Privacy requests, through the same writer URL as the models (a member of bte_privacy).
    let privacy: SerialClient<PrivacyStore>?

    public init(configuration: Configuration) throws {
        self.configuration = configuration
        connections = ConnectionGate(cap: configuration.maxConnections)
        collector = Collector(limits: configuration.limits, topicPrefix: configuration.topicPrefix)
        keys = KeyDirectory(readerURL: configuration.readerURL, ttl: .seconds(configuration.keyCacheSeconds))
        var producer = KafkaProducerConfiguration(
            client: KafkaClientConfiguration(brokers: configuration.brokers, properties: configuration.kafkaProperties))
        producer.messageTimeoutMilliseconds = configuration.deliveryTimeoutMilliseconds
        producer.lingerMilliseconds = 1
        publisher = try EventPublisher(configuration: producer)
        vectors = VectorReader(readerURL: configuration.readerURL)
        readers = ReaderPool(readerURL: configuration.readerURL, connections: configuration.readerConnections)
        projectorFreshness = ProjectorFreshness(urls: configuration.projectorMetricsURLs)
        feed = DeliveryFeed(
            readers: readers, readerURL: configuration.readerURL, poll: Self.streamPoll, heartbeat: Self.heartbeat,
            buffer: Self.streamBuffer)
        var status = Status.Configuration(brokers: configuration.brokers, readerURL: configuration.readerURL)
        status.kafkaProperties = configuration.kafkaProperties
        status.topicPrefix = configuration.topicPrefix
        status.timeoutMilliseconds = 2_000
        status.sinkGroup = "bte-sink"
        operations = OperationsSnapshot(status: Status(configuration: status))
        spec = try OpenAPISpec.json()
        privacy = configuration.modelsURL.map { url in
            SerialClient(label: "bte.api.privacy", open: { try PrivacyStore(url: url) }, healthy: { $0.isHealthy })
        }
        models = configuration.modelsURL.map {
            ModelService(
                url: $0, workers: configuration.modelWorkers,
                wait: .milliseconds(configuration.jobWaitMilliseconds),
                deadlineSeconds: configuration.jobDeadlineSeconds,
                runsTopic: configuration.topicPrefix + "bte.model-runs.v1",
                admission: JobAdmission(
                    perWorkspace: configuration.maxJobsPerWorkspace, total: configuration.maxJobs))
        }
    }

    /// The server as a `Service` with `/metrics`, `/healthz` and `/readyz` next to the API.
    public func service(registry: PrometheusCollectorRegistry, readiness: Readiness, logger: Logger) -> any Service {
        readiness.register("serve")
        return Application(
            router: router(registry: registry, readiness: readiness),
            server: .http1(
                configuration: .init(
                    additionalChannelHandlers: [
                        RequestDeadlineHandler(
                            gate: connections, deadline: .seconds(Int64(configuration.requestTimeoutSeconds)))
                    ],
                    idleTimeout: .seconds(Int64(configuration.readTimeoutSeconds)))),
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port), serverName: "bte"),
            logger: logger)
    }

    public func shutdown() { publisher.shutdown() }

    /// Ready while PostgreSQL (the keys) and the broker (its metadata) answer: checked every
    /// `interval` until cancelled, and after every publish.
    public func watchReadiness(_ readiness: Readiness, interval: Duration = .seconds(2)) async {
        let properties = ["log_level": "2"].merging(configuration.kafkaProperties) { $1 }
        let admin =
            (try? KafkaAdmin(
                configuration: KafkaClientConfiguration(brokers: configuration.brokers, properties: properties)))
            .map(AdminBox.init)
        while !Task.isCancelled {
            let database = await keys.reachable()
            // One check at a time, on a thread of its own: the metadata call blocks.
            let broker = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                Thread {
                    continuation.resume(
                        returning: (try? admin?.admin.topicPartitionCounts(timeoutMilliseconds: 2_000)) != nil)
                }.start()
            }
            readiness.set("serve", ready: database && broker)
            try? await Task.sleep(for: interval)
        }
    }

    /// Exports the database's health every `interval` until cancelled: the last recorded
    /// backup's age, the WAL archive's, whether the server is a standby, each standby's lag.
    public func watchDatabase(interval: Duration = .seconds(15)) async {
        let url = configuration.readerURL
        var standbys: Set<String> = []
        while !Task.isCancelled {
            // A connection per reading (one every 15 s): after a failover it reaches the host the
            // URL now leads to.
            let health = await withCheckedContinuation { (continuation: CheckedContinuation<DatabaseHealth?, Never>) in
                Thread { continuation.resume(returning: try? StatusStore(url: url).databaseHealth()) }.start()
            }
            if let health {
                Gauge(label: "bte_postgres_in_recovery").record(health.inRecovery ? 1 : 0)
                if let age = health.backupAgeSeconds { Gauge(label: "bte_backup_age_seconds").record(age) }
                if let age = health.archiveAgeSeconds { Gauge(label: "bte_wal_archive_age_seconds").record(age) }
                Gauge(label: "bte_wal_archive_failures").record(health.archiveFailures)
                var seen: Set<String> = []
                for standby in health.standbys {
                    seen.insert(standby.name)
                    if let lag = standby.lagSeconds {
                        Gauge(label: "bte_postgres_replication_lag_seconds", dimensions: [("standby", standby.name)])
                            .record(lag)
                    }
                }
                // A standby that went away is no longer lagging: its series goes.
                for gone in standbys.subtracting(seen) {
                    Gauge(label: "bte_postgres_replication_lag_seconds", dimensions: [("standby", gone)]).destroy()
                }
                standbys = seen
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// Each path's methods (what the spec declares); `{…}` is one path segment.
    static let methods: [String: [HTTPRequest.Method]] = [
        "/v1/events": [.post], "/api/v1/interactions/log": [.post], "/healthz": [.get], "/readyz": [.get],
        "/metrics": [.get], "/openapi.json": [.get], "/api/v1/behavioral-vectors/compute": [.post],
        "/api/v1/behavioral-vectors/{user_id}": [.get], "/api/v1/analytics/engagement/{user_id}": [.get],
        "/v1/workspaces/{workspace_id}/signals": [.get], "/v1/workspaces/{workspace_id}/signals/{name}/history": [.get],
        "/v1/workspaces/{workspace_id}/insights": [.get], "/v1/insights/{insight_id}/feedback": [.post],
        "/v1/users/{user_id}/insights/pending": [.get], "/v1/users/{user_id}/insights/stream": [.get],
        "/dashboard": [.get, .post], "/v1/estimate": [.post], "/v1/simulate": [.post], "/v1/forecast": [.post],
        "/v1/recommend": [.post], "/v1/jobs/{job_id}": [.get], "/v1/privacy/requests": [.post],
        "/v1/privacy/requests/{request_id}": [.get], "/v1/privacy/requests/{request_id}/export": [.get],
    ]

    /// The methods of the path template `path` matches (a literal path before any template).
    /// A concrete path never matches a `/compute`-style literal sibling's template: literals win.
    static func methods(of path: String, in allowed: [String: [HTTPRequest.Method]]) -> [HTTPRequest.Method]? {
        if let exact = allowed[path] { return exact }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        for (template, methods) in allowed where template.contains("{") {
            let parts = template.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == segments.count else { continue }
            let matches = zip(parts, segments).allSatisfy { part, segment in
                part.hasPrefix("{") ? !segment.isEmpty : part == segment
            }
            if matches { return methods }
        }
        return nil
    }

    func router(registry: PrometheusCollectorRegistry, readiness: Readiness) -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        router.add(middleware: ClientAddressMiddleware())
        router.add(middleware: MethodNotAllowed(allowed: APIServer.methods))
        ObservabilityServer.addRoutes(to: router, registry: registry, readiness: readiness)
        let spec = self.spec
        router.get("openapi.json") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: spec)))
        }
        router.post("v1/events") { request, _ -> Response in
            await self.answer("events") {
                let key = try await self.authorize(request, scope: "write")
                let body = try await self.body(request)
                let batch = try self.collector.events(
                    body: body, workspaceID: key.workspaceID, mayGiveFeedback: key.scope == "admin"
                ).get()
                try await self.publish(Self.traced(batch.messages, request), readiness: readiness)
                let rejected = batch.rejected.map {
                    "{\"index\":\($0.index),\"code\":\(JSONValue.quoted($0.code)),"
                        + "\"message\":\(JSONValue.quoted($0.message))}"
                }
                return json(
                    .ok, "{\"accepted\":\(batch.messages.count),\"rejected\":[\(rejected.joined(separator: ","))]}")
            }
        }
        router.post("api/v1/interactions/log") { request, _ -> Response in
            await self.answer("interactions_log") {
                let key = try await self.authorize(request, scope: "write")
                let body = try await self.body(request)
                let idempotency = try idempotencyKey(request)
                let name = "\(key.workspaceID.lowercased())|interaction|\(idempotency ?? "")"
                if idempotency != nil, let repeated = try self.repeatedReply(name, body: body) {
                    return repeated
                }
                let (message, record) = try self.collector.interaction(
                    body: body, workspaceID: key.workspaceID, idempotencyKey: idempotency
                ).get()
                try await self.publish(Self.traced([message], request), readiness: readiness)
                func text(_ field: String) -> String {
                    if case .string(let value)? = record[field] { return JSONValue.quoted(value) }
                    return "null"
                }
                let reply =
                    "{\"event_id\":\(text("event_id")),\"timestamp\":\(text("timestamp")),"
                    + "\"user_id\":\(text("user_id")),\"event_type\":\(text("event_type")),\"success\":true}"
                if idempotency != nil { self.replies.store(name, request: body, reply: reply) }
                return json(.ok, reply)
            }
        }
        router.post("api/v1/behavioral-vectors/compute") { request, _ -> Response in
            await self.answer("vector_compute") {
                let key = try await self.authorize(request, scope: "read")
                let body = try await self.body(request)
                guard let parsed = try? JSONParser.parse(body), case .string(let user)? = parsed["user_id"],
                    !user.isEmpty
                else {
                    throw APIError(.badRequest, "invalid_body", "the body is not {\"user_id\": \"…\"}")
                }
                let now = Timestamp(microseconds: Int64(Date().timeIntervalSince1970 * 1_000_000))
                let outcome: VectorReader.Outcome
                do {
                    outcome = try await self.vectors.compute(userID: user, workspaceID: key.workspaceID, asOf: now)
                } catch {
                    throw APIError(.serviceUnavailable, "unavailable", "the logs can't be read now; retry")
                }
                guard case .vector(let bytes) = outcome else {
                    // Not this workspace's user, or no interaction in the last 30 days: the same
                    // answer, so no other workspace's users can be discovered.
                    throw APIError(.notFound, "not_found", "no behavioral vector for this user in this workspace")
                }
                return Response(
                    status: .ok, headers: [.contentType: "application/json"],
                    body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
            }
        }
        addReadRoutes(to: router, readiness: readiness)
        addDashboardRoutes(to: router)
        addModelRoutes(to: router)
        addPrivacyRoutes(to: router)
        addPrivacyExportRoute(to: router)
        return router
    }

    /// Runs a handler; any error becomes its JSON error reply (unexpected ones a 500 without
    /// details, logged).
    func answer(_ endpoint: String, _ body: () async throws -> Response) async -> Response {
        let response: Response
        do {
            response = try await body()
        } catch let error as APIError {
            response = error.response
        } catch {
            Logger(label: "bte.serve").error(
                "request failed", metadata: ["endpoint": "\(endpoint)", "error": "\(error)"])
            response = APIError(.internalServerError, "internal", "the server failed; see its log").response
        }
        Counter(
            label: "bte_api_requests_total",
            dimensions: [("endpoint", endpoint), ("status", String(response.status.code))]
        ).increment()
        return response
    }

    /// The first reply to a request with this `Idempotency-Key` (nothing is produced again), nil
    /// when there is none; 422 when the key was used for another request.
    func repeatedReply(_ name: String, body: [UInt8]) throws -> Response? {
        switch replies.lookup(name, request: body) {
        case .miss: return nil
        case .reply(let reply): return json(.ok, reply)
        case .reused: throw APIError.idempotencyKeyReused
        }
    }

    /// The key of `Authorization: Bearer <key>` if it is live and allowed here, within its rate.
    func authorize(_ request: Request, scope: String, or other: String? = nil) async throws -> StoredApiKey {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            throw APIError.unauthorized
        }
        let token = String(header.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces)
        let found = try await key(sha256: ApiKeyHash.sha256(token))
        guard let key = found else { throw APIError.unauthorized }
        guard key.scope == scope || key.scope == "admin" || key.scope == other else { throw APIError.forbidden(scope) }
        if let wait = limiter.take(key: key.id, rate: key.ratePerSecond, burst: key.burst) {
            var error = APIError(.tooManyRequests, "rate_limited", "over this key's rate; retry after \(wait) s")
            error.headers[.retryAfter] = String(wait)
            throw error
        }
        return key
    }

    /// The live key with this hash, or nil (a failure, counted against the client's address).
    /// An address over its budget of failures gets 429 for anything but a valid key already
    /// known, without a lookup.
    func key(sha256 hash: [UInt8]) async throws -> StoredApiKey? {
        let address = ClientAddress.current ?? "-"
        let rate = configuration.failedAuthenticationsPerSecond
        let burst = configuration.failedAuthenticationBurst
        if case .key(let key?) = keys.cached(sha256: hash) { return key }
        if let wait = failures.peek(key: address, rate: rate, burst: burst) {
            var error = APIError(
                .tooManyRequests, "too_many_failed_authentications",
                "too many requests with unknown keys from this address; retry after \(wait) s")
            error.headers[.retryAfter] = String(wait)
            Counter(label: "bte_api_authentication_throttled_total").increment()
            throw error
        }
        let found: StoredApiKey?
        do {
            found = try await keys.key(sha256: hash)
        } catch {
            throw APIError(.serviceUnavailable, "unavailable", "the key store can't be reached; retry")
        }
        if found == nil { _ = failures.take(key: address, rate: rate, burst: burst) }
        return found
    }

    /// The body, at most `limit` bytes (1 MiB): read as it arrives, refused as soon as it is over.
    func body(_ request: Request, limit: Int = Collector.maxBodyBytes) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        let deadline =
            ContinuousClock.now + .seconds(configuration.readTimeoutSeconds * Configuration.bodyTimeoutFactor)
        for try await buffer in request.body {
            guard ContinuousClock.now < deadline else {
                throw APIError(.requestTimeout, "request_timeout", "the body did not arrive in time")
            }
            guard bytes.count + buffer.readableBytes <= limit else {
                throw APIError(.contentTooLarge, "body_too_large", "the body is over \(limit) bytes")
            }
            bytes += buffer.readableBytesView
        }
        return bytes
    }

    /// The collected records carry the request's W3C `traceparent`, when it has a valid one, so
    /// a trace begun by the caller continues through ingest and the projector.
    static func traced(_ messages: [KafkaOutgoingMessage], _ request: Request) -> [KafkaOutgoingMessage] {
        guard let name = HTTPField.Name(TraceParent.headerName), let value = request.headers[name],
            let context = TraceParent(Array(value.utf8))
        else { return messages }
        let header = [KafkaHeader(name: TraceParent.headerName, value: Array(context.header.utf8))]
        return messages.map {
            KafkaOutgoingMessage(
                topic: $0.topic, key: $0.key, value: $0.value, partition: $0.partition, headers: header)
        }
    }

    func publish(_ messages: [KafkaOutgoingMessage], readiness: Readiness) async throws {
        do {
            try await publisher.publish(messages)
            readiness.set("serve", ready: true)
        } catch {
            readiness.set("serve", ready: false)
            throw APIError(
                .serviceUnavailable, "broker_unavailable", "the broker did not acknowledge; nothing was accepted")
        }
    }
}

/// The request's `Idempotency-Key`, if it has one: 1 to 255 bytes.
func idempotencyKey(_ request: Request) throws -> String? {
    let key = request.headers.first { $0.name.canonicalName == "idempotency-key" }?.value
    if let key, key.isEmpty || key.utf8.count > 255 {
        throw APIError(.badRequest, "invalid_idempotency_key", "Idempotency-Key is 1 to 255 bytes")
    }
    return key
}

func json(_ status: HTTPResponse.Status, _ body: String) -> Response {
    Response(
        status: status, headers: [.contentType: "application/json"],
        body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
}

/// A method a known path does not have: 405 with the methods it has (any method, even ones no
/// route names), rather than the router's 404.
struct MethodNotAllowed<Context: RequestContext>: RouterMiddleware {
    let allowed: [String: [HTTPRequest.Method]]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        guard let methods = APIServer.methods(of: request.uri.path, in: allowed),
            !methods.contains(request.method)
        else {
            do {
                return try await next(request, context)
            } catch let error as HTTPError {
                // The router's own answers (no such path, a malformed request) in the API's error shape.
                let code = error.status == .notFound ? "not_found" : "bad_request"
                return APIError(error.status, code, error.body ?? error.status.reasonPhrase).response
            }
        }
        let allow = methods.map(\.rawValue).joined(separator: ", ")
        var error = APIError(.methodNotAllowed, "method_not_allowed", "this path allows \(allow)")
        error.headers[.allow] = allow
        return error.response
    }
}

/// The readiness watcher's admin client, used by one check at a time.
private final class AdminBox: @unchecked Sendable {
    let admin: KafkaAdmin
    init(_ admin: KafkaAdmin) { self.admin = admin }
}

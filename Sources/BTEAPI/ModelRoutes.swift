import BTEDomain
import BTEModelRuns
import BTEModels
import BTEOperations
import BTEStore
import Foundation
import HTTPTypes
import Hummingbird
import Kafka
import Metrics
import Postgres
import Synchronization

/// The KPI models over HTTP: each request is a job recorded in `bte.model_jobs`. The reply waits
/// for the job up to the server's job wait (none with `Prefer: respond-async`); a job still
/// running then is answered 202 with `Location: /v1/jobs/{id}`. A request repeated with the same
/// `Idempotency-Key` within 24 hours gets the first one's job and reply, computed once.
final class ModelService: Sendable {
    /// Computes fits, simulations and plans, each on its own connection.
    private let workers: [SerialClient<ModelStore>]
    /// Records and reads jobs: never queued behind a fit.
    private let jobs: SerialClient<ModelStore>
    private let load: WorkerLoad
    let wait: Duration
    let deadlineSeconds: Int
    let runsTopic: String
    let admission: JobAdmission

    init(url: String, workers: Int, wait: Duration, deadlineSeconds: Int, runsTopic: String, admission: JobAdmission) {
        self.admission = admission
        self.workers = (0..<max(workers, 1)).map { index in
            SerialClient(
                label: "bte.api.models.\(index)", open: { try ModelStore(url: url) }, healthy: { $0.isHealthy })
        }
        load = WorkerLoad(workers: max(workers, 1))
        jobs = SerialClient(label: "bte.api.jobs", open: { try ModelStore(url: url) }, healthy: { $0.isHealthy })
        self.wait = wait
        self.deadlineSeconds = deadlineSeconds
        self.runsTopic = runsTopic
    }

    /// Runs `body` on the job store; a value PostgreSQL can't hold (e.g. a number beyond its
    /// range in the body) is the client's 400, a failing database a 503.
    func jobStore<R: Sendable>(_ body: @escaping @Sendable (ModelStore) throws -> R) async throws -> R {
        do {
            return try await jobs.run(body)
        } catch let error as PostgresError where error.sqlState?.hasPrefix("22") == true {
            throw APIError(.badRequest, "invalid_body", "a value in the body can't be stored: \(error.message)")
        } catch {
            throw APIError(.serviceUnavailable, "unavailable", "the database can't be reached now; retry")
        }
    }

    /// Runs job `id` on the least busy worker connection (a 20 ms simulation never queues
    /// behind a fit of seconds while another worker is idle); its deadline starts then.
    func compute<R: Sendable>(job id: String, _ body: @escaping @Sendable (ModelRuns) throws -> R) async throws -> R {
        let index = load.take()
        defer { load.release(index) }
        let deadline = deadlineSeconds
        return try await workers[index].run { store in
            try store.startJob(id: id, deadlineSeconds: deadline)
            return try body(ModelRuns(store: store))
        }
    }

    /// A finished job's reply: its HTTP status and body.
    struct Reply: Sendable {
        var status: Int
        var body: String

        init(status: Int, body: String) {
            self.status = status
            self.body = body
        }

        init(_ error: APIError) { self.init(status: Int(error.status.code), body: error.body) }
    }

    /// The jobs this server is running, by id, for requests waiting on them.
    let running = Mutex<[String: Outcome]>([:])
}

/// Jobs queued or running on each worker; a new job goes to the least busy one (the first of
/// equals).
final class WorkerLoad: Sendable {
    private let counts: Mutex<[Int]>

    init(workers: Int) { counts = Mutex(Array(repeating: 0, count: max(workers, 1))) }

    func take() -> Int {
        counts.withLock { counts in
            let index = counts.indices.min { counts[$0] < counts[$1] } ?? 0
            counts[index] += 1
            return index
        }
    }

    func release(_ index: Int) { counts.withLock { $0[index] -= 1 } }
}

/// The jobs running or queued on this server, per workspace and in total, each bounded: one
/// workspace can't keep every other's jobs waiting, and the server's queue can't grow without end.
final class JobAdmission: Sendable {
    let perWorkspace: Int
    let total: Int
    private let counts = Mutex<(byWorkspace: [String: Int], total: Int)>(([:], 0))

    init(perWorkspace: Int, total: Int) {
        self.perWorkspace = perWorkspace
        self.total = total
    }

    enum Refusal: Error {
        case workspaceFull
        case serverFull
    }

    /// Takes a slot for a job of `workspace`, or says which bound refused it.
    func enter(_ workspace: String) throws(Refusal) {
        let refusal: Refusal? = counts.withLock { counts in
            if counts.byWorkspace[workspace, default: 0] >= perWorkspace { return .workspaceFull }
            if counts.total >= total { return .serverFull }
            counts.byWorkspace[workspace, default: 0] += 1
            counts.total += 1
            return nil
        }
        if let refusal { throw refusal }
    }

    func leave(_ workspace: String) {
        counts.withLock { counts in
            let left = counts.byWorkspace[workspace, default: 1] - 1
            counts.byWorkspace[workspace] = left > 0 ? left : nil
            counts.total -= 1
        }
    }
}

/// A job's reply once it is known, for any number of waiters, each with its own time limit.
final class Outcome: Sendable {
    private struct Waiter {
        var continuation: CheckedContinuation<ModelService.Reply?, Never>
        /// Ends the wait at its limit; cancelled when the reply comes first.
        var timer: Task<Void, Never>?
    }
    private struct State {
        var reply: ModelService.Reply?
        var waiters: [Int: Waiter] = [:]
        var nextWaiter = 0
    }
    private let state = Mutex(State())

    func finish(_ reply: ModelService.Reply) {
        let waiters = state.withLock { state in
            state.reply = reply
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters {
            waiter.timer?.cancel()
            waiter.continuation.resume(returning: reply)
        }
    }

    /// The reply, or nil if it is not known within `limit`.
    func wait(_ limit: Duration) async -> ModelService.Reply? {
        if let reply = state.withLock({ $0.reply }) { return reply }
        if limit <= .zero { return nil }
        return await withCheckedContinuation { continuation in
            let id: Int? = state.withLock { state in
                if state.reply != nil { return nil }
                let id = state.nextWaiter
                state.nextWaiter += 1
                state.waiters[id] = Waiter(continuation: continuation)
                return id
            }
            guard let id else {
                continuation.resume(returning: state.withLock { $0.reply })
                return
            }
            let timer = Task {
                try? await Task.sleep(for: limit)
                guard !Task.isCancelled else { return }
                state.withLock { $0.waiters.removeValue(forKey: id) }?.continuation.resume(returning: nil)
            }
            // Still waiting: keep the timer to cancel; else the reply came already, so stop it.
            let kept = state.withLock { state -> Bool in
                guard state.waiters[id] != nil else { return false }
                state.waiters[id]?.timer = timer
                return true
            }
            if !kept { timer.cancel() }
        }
    }
}

extension APIServer {
    static let modelKinds = ["estimate", "simulate", "forecast", "recommend"]
    /// Marks a reply repeated from an earlier request with the same Idempotency-Key.
    static let replayedHeader = HTTPField.Name("Idempotent-Replayed")

    func addModelRoutes(to router: Router<APIRequestContext>) {
        for kind in Self.modelKinds {
            router.post("v1/\(kind)") { request, _ -> Response in
                await self.answer(kind) { try await self.modelRequest(kind, request) }
            }
        }
        router.get("v1/jobs/:job_id") { request, context -> Response in
            await self.answer("job") {
                let key = try await self.authorize(request, scope: "read")
                let models = try self.modelService()
                let id = try context.parameters.require("job_id")
                let workspace = key.workspaceID
                guard let job = try await models.jobStore({ try $0.job(id: id, workspaceID: workspace) }) else {
                    throw APIError.notFound("no job \(id) in this workspace")
                }
                return json(.ok, Self.jobJSON(job))
            }
        }
    }

    func modelService() throws -> ModelService {
        guard let models else {
            throw APIError(
                .serviceUnavailable, "models_unavailable",
                "the models endpoints need bte serve --database-url (a member of bte_models)")
        }
        return models
    }

    func modelRequest(_ kind: String, _ request: Request) async throws -> Response {
        let key = try await authorize(request, scope: "read")
        let body = try await self.body(request)
        let models = try modelService()
        guard let parsed = try? JSONParser.parse(body) else {
            throw APIError(.badRequest, "invalid_body", "the body is not JSON")
        }
        let workspace = key.workspaceID
        let work: @Sendable (ModelRuns) throws -> ModelRuns.Recorded
        do {
            switch kind {
            case "estimate":
                let fit = try ModelRequests.estimate(
                    parsed, workspaceID: workspace, yesterday: ModelRequests.yesterday())
                work = { try $0.fit(fit) }
            case "recommend":
                var plan = try ModelRequests.recommend(parsed, workspaceID: workspace)
                plan.workspaceID = workspace
                let settled = plan
                work = { try $0.recommend(settled) }
            default:
                var simulation = try ModelRequests.simulate(
                    parsed, forecast: kind == "forecast", workspaceID: workspace)
                simulation.workspaceID = workspace
                let settled = simulation
                work = { try $0.simulate(settled) }
            }
        } catch let error as ModelError {
            throw Self.apiError(error)
        }
        let idempotencyKey = try idempotencyKey(request)
        let respondAsync = request.headers.contains {
            $0.name.canonicalName == "prefer" && $0.value.lowercased().contains("respond-async")
        }
        let canonical = parsed.canonicalString()
        let deadline = models.deadlineSeconds
        do {
            try models.admission.enter(workspace)
        } catch {
            var refusal =
                error == .workspaceFull
                ? APIError(
                    .tooManyRequests, "too_many_jobs",
                    "this workspace has \(models.admission.perWorkspace) model jobs running or queued; retry later")
                : APIError(
                    .serviceUnavailable, "server_busy",
                    "the server has \(models.admission.total) model jobs running or queued; retry later")
            refusal.headers[.retryAfter] = "5"
            Counter(label: "bte_model_jobs_refused_total", dimensions: [("reason", refusal.code)]).increment()
            throw refusal
        }
        // Released when the job ends, or now if no job of this server runs for the request.
        var admitted = true
        defer { if admitted { models.admission.leave(workspace) } }
        let creation = try await models.jobStore {
            try $0.createJob(
                workspaceID: workspace, kind: kind, idempotencyKey: idempotencyKey, request: canonical,
                deadlineSeconds: deadline)
        }
        switch creation {
        case .conflict:
            throw APIError.idempotencyKeyReused
        case .existing(let job):
            // The stored reply, else (still running here) the reply within the wait.
            var reply = job.httpStatus.flatMap { status in
                job.result.map { ModelService.Reply(status: status, body: $0) }
            }
            if reply == nil, let outcome = models.running.withLock({ $0[job.jobID] }) {
                reply = await outcome.wait(respondAsync ? .zero : models.wait)
            }
            if let reply {
                var response = json(HTTPResponse.Status(code: reply.status), reply.body)
                if let replayed = Self.replayedHeader { response.headers[replayed] = "true" }
                return response
            }
            return accepted(job)
        case .created(let id):
            let outcome = Outcome()
            models.running.withLock { $0[id] = outcome }
            admitted = false
            Task {
                await self.runJob(id, kind: kind, workspace: workspace, work: work, models: models, outcome: outcome)
                models.admission.leave(workspace)
            }
            if let reply = await outcome.wait(respondAsync ? .zero : models.wait) {
                return json(HTTPResponse.Status(code: reply.status), reply.body)
            }
            return accepted(
                ModelJob(
                    jobID: id, kind: kind, status: "running", httpStatus: nil, result: nil,
                    createdAt: Timestamp(microseconds: Int64(Date().timeIntervalSince1970 * 1_000_000)).rfc3339,
                    finishedAt: nil, abandoned: false))
        }
    }

    /// 202: the job is running; poll its Location.
    func accepted(_ job: ModelJob) -> Response {
        var response = json(.accepted, Self.jobJSON(job))
        response.headers[.location] = "/v1/jobs/\(job.jobID)"
        response.headers[.retryAfter] = "1"
        return response
    }

    /// Computes, publishes the run to the runs topic, records the reply; then any waiter gets it.
    func runJob(
        _ id: String, kind: String, workspace: String,
        work: @escaping @Sendable (ModelRuns) throws -> ModelRuns.Recorded,
        models: ModelService, outcome: Outcome
    ) async {
        let started = ContinuousClock.now
        var reply: ModelService.Reply
        do {
            let recorded = try await models.compute(job: id, work)
            do {
                try await publisher.publish([
                    KafkaOutgoingMessage(
                        topic: models.runsTopic, key: Array(workspace.utf8), value: recorded.record.canonicalBytes())
                ])
                reply = .init(status: 200, body: recorded.record.canonicalString())
            } catch {
                reply = .init(
                    APIError(
                        .serviceUnavailable, "broker_unavailable",
                        "run \(recorded.runID) is recorded but the broker did not acknowledge it on \(models.runsTopic)"
                    ))
            }
        } catch let error as ModelError {
            reply = .init(Self.apiError(error))
        } catch {
            reply = .init(APIError(.serviceUnavailable, "unavailable", "the database failed during the job; retry"))
        }
        let finished = reply
        // A few tries: a job left running would answer 202 to its key's retries until its deadline.
        for pause in [Duration.zero, .milliseconds(200), .seconds(1), .seconds(5)] {
            try? await Task.sleep(for: pause)
            do {
                try await models.jobStore {
                    try $0.finishJob(
                        id: id, succeeded: finished.status == 200, httpStatus: finished.status, result: finished.body)
                }
                break
            } catch {
                // The waiters still get the reply; the job reads as abandoned after its deadline.
            }
        }
        models.running.withLock { _ = $0.removeValue(forKey: id) }
        outcome.finish(finished)
        Counter(label: "bte_model_jobs_total", dimensions: [("kind", kind), ("status", String(finished.status))])
            .increment()
        Metrics.Timer(label: "bte_model_job_duration_seconds", dimensions: [("kind", kind)])
            .recordNanoseconds((ContinuousClock.now - started).nanoseconds)
    }

    static func apiError(_ error: ModelError) -> APIError {
        switch error.code {
        case .invalidInput: return APIError(.badRequest, "invalid_request", error.message)
        case .notFound: return APIError(.notFound, "not_found", error.message)
        case .insufficientData: return APIError(.unprocessableContent, "insufficient_data", error.message)
        case .notPositiveDefinite, .notConverged:
            return APIError(.unprocessableContent, error.code.rawValue, error.message)
        }
    }

    static func jobJSON(_ job: ModelJob) -> String {
        var members = [
            "\"job_id\":\(JSONValue.quoted(job.jobID))", "\"kind\":\(JSONValue.quoted(job.kind))",
            "\"status\":\(JSONValue.quoted(job.status))", "\"created_at\":\(JSONValue.quoted(job.createdAt))",
        ]
        if let finished = job.finishedAt { members.append("\"finished_at\":\(JSONValue.quoted(finished))") }
        if let status = job.httpStatus { members.append("\"http_status\":\(status)") }
        if let result = job.result {
            if job.status == "succeeded" {
                members.append("\"result\":\(result)")
            } else if let error = (try? JSONParser.parse(Array(result.utf8)))?["error"] {
                // A failure is stored as its reply, {"error": {...}}.
                members.append("\"error\":\(error.canonicalString())")
            }
        } else if job.abandoned {
            members.append(
                "\"error\":{\"code\":\"abandoned\","
                    + "\"message\":\"the server running the job stopped before it finished; retry\"}"
            )
        }
        return "{" + members.joined(separator: ",") + "}"
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

import BTEStore
import BTETestSupport
import Foundation
import Kafka
import Testing

/// The models endpoints against the real servers: a workspace's activity through Kafka and
/// ingest, then fits, simulations, forecasts and plans over HTTP, as jobs with idempotency keys.
@Suite(.serialized) struct ModelAPITests {
    static func object(_ body: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any], "\(body)")
    }

    static func errorCode(_ body: String) -> String? {
        ((try? object(body))?["error"] as? [String: Any])?["code"] as? String
    }

    @Test func modelRequestsAreJobsThatAnswerOnceAndOnlyTheirWorkspace() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let options = try ModelsTests.ingestStream(db, topics)
        let read = try APITests.createKey(db, scope: "read", rate: 10_000, workspace: options.workspace)
        let write = try APITests.createKey(db, scope: "write", rate: 10_000, workspace: options.workspace)
        let stranger = try APITests.createKey(db, scope: "read", rate: 10_000, workspace: APITests.other)
        let port = freePort()
        // Replies here are awaited (a debug build's fit can outlast the default 2 s wait); the
        // 202 path is tested below with `Prefer: respond-async`.
        let server = try APITests.serve(
            db, topics, port: port, extra: ["--database-url", db.ingestURL, "--job-wait-ms", "30000"])
        defer { server.signal(SIGKILL) }

        // A producer's key can't run models; a fit for the key's workspace is recorded.
        let fitBody = #"{"model":"state_space","since":90}"#
        #expect(APITests.post(port, "/v1/estimate", key: write, fitBody).status == 403)
        let fitted = APITests.post(port, "/v1/estimate", key: read, fitBody)
        #expect(fitted.status == 200, "\(fitted)\n\(server.log)")
        let fit = try Self.object(fitted.body)
        let runID = try #require(fit["run_id"] as? String)
        #expect(fit["kind"] as? String == "estimate" && fit["workspace_id"] as? String == options.workspace)
        #expect(try db.count("SELECT count(*) FROM bte.estimate_runs WHERE run_id = '\(runID)'") == 1)

        // The same simulation over HTTP and by the command: the same numbers (same run, plan, seed).
        let simulateBody =
            #"{"run_id":"\#(runID)","horizon":7,"controls":[{},{"rollout_pct":1.0}],"scenarios":500,"seed":5}"#
        let simulated = APITests.post(
            port, "/v1/simulate", key: read, simulateBody, headers: ["Idempotency-Key": "s-1"])
        #expect(simulated.status == 200, "\(simulated)")
        let simulation = try Self.object(simulated.body)
        let simulationID = try #require(simulation["run_id"] as? String)
        let plan = FileManager.default.temporaryDirectory.appendingPathComponent(
            TestEnvironment.uniqueName("plan-") + ".json")
        try Data(#"{"controls":[{},{"rollout_pct":1.0}]}"#.utf8).write(to: plan)
        defer { try? FileManager.default.removeItem(at: plan) }
        let env = ["BTE_KAFKA_BROKERS": topics.brokers, "BTE_DATABASE_URL": db.ingestURL, "BTE_LOG_LEVEL": "error"]
        let command = try ModelsTests.json(
            try runBTE(
                [
                    "models", "simulate", "--run", runID, "--horizon", "7", "--controls", plan.path, "--scenarios",
                    "500", "--seed", "5", "--no-publish", "--format", "json",
                ], env))
        let kpis = try #require(simulation["kpis"] as? [String: Any])
        #expect(NSDictionary(dictionary: kpis).isEqual(to: try #require(command["kpis"] as? [String: Any])))
        // Day 0 keeps the last fitted rollout (the stream's 0.75); day 1 on, 1.0.
        #expect(
            (simulation["controls"] as? [String: Any])?["rollout_pct"] as? [Double]
                == [0.75] + Array(repeating: 1.0, count: 6))

        // Retried with its key: the first reply, computed once; the key can't name another request.
        let simulations = try db.count("SELECT count(*) FROM bte.simulation_runs")
        let retried = APITests.post(port, "/v1/simulate", key: read, simulateBody, headers: ["Idempotency-Key": "s-1"])
        #expect(retried.status == 200 && retried.headers["idempotent-replayed"] == "true", "\(retried.headers)")
        #expect(try Self.object(retried.body)["run_id"] as? String == simulationID)
        #expect(try db.count("SELECT count(*) FROM bte.simulation_runs") == simulations)
        // The same request with its members in another order and spacing is the same request.
        let reordered =
            #"{ "seed": 5, "scenarios": 500, "controls": [{}, {"rollout_pct": 1.0}], "horizon": 7,"#
            + #" "run_id": "\#(runID)" }"#
        #expect(
            try Self.object(
                APITests.post(port, "/v1/simulate", key: read, reordered, headers: ["Idempotency-Key": "s-1"]).body
            )["run_id"] as? String == simulationID)
        let reused = APITests.post(
            port, "/v1/simulate", key: read, simulateBody.replacingOccurrences(of: "\"seed\":5", with: "\"seed\":6"),
            headers: ["Idempotency-Key": "s-1"])
        #expect(reused.status == 422 && Self.errorCode(reused.body) == "idempotency_key_reused", "\(reused)")
        // Keys are per workspace: another workspace's same key is its own.
        #expect(
            APITests.post(port, "/v1/simulate", key: stranger, simulateBody, headers: ["Idempotency-Key": "s-1"]).status
                == 404)

        // Asked to answer at once: 202 and a job to poll, which ends with the plan.
        let recommendBody =
            #"{"run_id":"\#(runID)","horizon":10,"constraints":{"targets":{"daily_active_users":1000},"#
            + #""weekly_budget":3000,"budget_coefficients":{"promo_voltage":2000}}}"#
        let accepted = APITests.post(
            port, "/v1/recommend", key: read, recommendBody, headers: ["Prefer": "respond-async"])
        #expect(accepted.status == 202, "\(accepted)")
        let job = try Self.object(accepted.body)
        let jobID = try #require(job["job_id"] as? String)
        #expect(job["status"] as? String == "running" && job["kind"] as? String == "recommend")
        #expect(accepted.headers["location"] == "/v1/jobs/\(jobID)")
        var polled: [String: Any] = [:]
        #expect(
            eventually(timeout: 60) {
                polled =
                    (try? Self.object(ReadAPITests.get(port, "/v1/jobs/\(jobID)", key: read).body)) ?? [:]
                return polled["status"] as? String != "running"
            })
        #expect(polled["status"] as? String == "succeeded" && polled["http_status"] as? Int == 200, "\(polled)")
        let result = try #require(polled["result"] as? [String: Any])
        let promo = try #require((result["plan"] as? [String: [Double]])?["promo_voltage"])
        // 10 days; the first week's promotion spend within 3,000 (the solver's tolerance).
        #expect(promo.count == 10)
        #expect(promo.prefix(7).reduce(0, +) * 2_000 <= 3_000.03)
        #expect(result["kind"] as? String == "recommendation" && result["run_id"] is String)
        #expect(ReadAPITests.get(port, "/v1/jobs/\(jobID)", key: stranger).status == 404)

        // A forecast holds the last controls; the run of another workspace is not found.
        let forecast = APITests.post(port, "/v1/forecast", key: read, #"{"run_id":"\#(runID)","horizon":3}"#)
        #expect(forecast.status == 200, "\(forecast)")
        #expect(
            ((try Self.object(forecast.body))["controls"] as? [String: Any])?["rollout_pct"] as? [Double]
                == [0.75, 0.75, 0.75])
        let foreign = APITests.post(port, "/v1/forecast", key: stranger, #"{"run_id":"\#(runID)","horizon":3}"#)
        #expect(foreign.status == 404 && Self.errorCode(foreign.body) == "not_found", "\(foreign)")
        // The body may name the run and the workspace as the commands do; another workspace is not found.
        let named = APITests.post(
            port, "/v1/forecast", key: read,
            #"{"run":"\#(runID)","workspace_id":"\#(options.workspace)","horizon":3,"seed":1}"#)
        #expect(named.status == 200, "\(named)")
        #expect(try Self.object(named.body)["kind"] as? String == "forecast")
        let elsewhere = APITests.post(
            port, "/v1/estimate", key: read, #"{"model":"state_space","workspace_id":"\#(APITests.other)"}"#)
        #expect(elsewhere.status == 404 && Self.errorCode(elsewhere.body) == "not_found", "\(elsewhere)")

        // Bad requests are refused before any job: each names what is wrong.
        let jobs = try db.count("SELECT count(*) FROM bte.model_jobs")
        for (path, body) in [
            ("/v1/estimate", #"{"model":"arima"}"#), ("/v1/estimate", #"{"model":"state_space","since":7}"#),
            ("/v1/estimate", #"{"model":"state_space","sinse":90}"#), ("/v1/simulate", #"{"run_id":"x"}"#),
            ("/v1/simulate", #"{"run_id":"\#(runID)","horizon":0}"#),
            ("/v1/forecast", #"{"run_id":"\#(runID)","controls":{}}"#),
            ("/v1/recommend", #"{"run_id":"\#(runID)","constraints":{}}"#),
            ("/v1/simulate", #"{"run_id":"\#(runID)","controls":{"rollout_pct":"half"}}"#),
            ("/v1/estimate", #"{"model":"state_space","until":"100000000000000000-01-01"}"#),
        ] {
            let refused = APITests.post(port, path, key: read, body)
            #expect(refused.status == 400 && Self.errorCode(refused.body) == "invalid_request", "\(body): \(refused)")
        }
        let nul = APITests.post(port, "/v1/estimate", key: read, #"{"model":"state_space","segment":"a\u0000"}"#)
        #expect(nul.status == 400 && Self.errorCode(nul.body) == "invalid_body", "\(nul)")
        #expect(try db.count("SELECT count(*) FROM bte.model_jobs") == jobs)
        // A number PostgreSQL can't store is the client's error, not the server's.
        let tiny = APITests.post(port, "/v1/estimate", key: read, #"{"model":"state_space","ridge":1e-20000}"#)
        #expect(tiny.status == 400 && Self.errorCode(tiny.body) == "invalid_body", "\(tiny)")
        // Too many simulated paths for one request: refused, not attempted.
        let huge = APITests.post(
            port, "/v1/simulate", key: read, #"{"run_id":"\#(runID)","horizon":366,"scenarios":100000}"#)
        #expect(huge.status == 400 && huge.body.contains("1,000,000"), "\(huge)")
        #expect(httpGet(port: port, path: "/healthz")?.status == 200)

        // Each run went out on the runs topic: the fit, the simulation, the plan, two forecasts.
        #expect(try topics.readAll(topics.prefix + "bte.model-runs.v1").count == 5)
    }

    @Test func jobsAndKeysExpireAfterADayAndALostJobReadsFailed() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let read = try APITests.createKey(db, scope: "read", rate: 10_000)
        let port = freePort()
        let server = try APITests.serve(
            db, topics, port: port, extra: ["--database-url", db.ingestURL, "--job-wait-ms", "5000"])
        defer { server.signal(SIGKILL) }

        // An empty workspace: the fit fails with 422, and the failure is the key's reply.
        let body = #"{"model":"rc_retention","since":30}"#
        let first = APITests.post(port, "/v1/estimate", key: read, body, headers: ["Idempotency-Key": "k"])
        #expect(first.status == 422 && Self.errorCode(first.body) == "insufficient_data", "\(first)")
        let again = APITests.post(port, "/v1/estimate", key: read, body, headers: ["Idempotency-Key": "k"])
        #expect(again.status == 422 && again.headers["idempotent-replayed"] == "true", "\(again)")
        #expect(try db.count("SELECT count(*) FROM bte.model_jobs") == 1)

        // 25 hours later the key is free again: a new job.
        let connection = try db.admin()
        _ = try connection.execute("UPDATE bte.model_jobs SET created_at = now() - interval '25 hours'")
        let later = APITests.post(port, "/v1/estimate", key: read, body, headers: ["Idempotency-Key": "k"])
        #expect(later.status == 422 && later.headers["idempotent-replayed"] == nil, "\(later)")
        #expect(try db.count("SELECT count(*) FROM bte.model_jobs") == 1)

        // A job whose server stopped: past its deadline it reads failed, "abandoned".
        _ = try connection.execute(
            "UPDATE bte.model_jobs SET status = 'running', http_status = NULL, result = NULL, "
                + "deadline = now() - interval '1 second'"
        )
        let jobID = try #require(
            try connection.execute("SELECT job_id::text FROM bte.model_jobs").rows.first?[0] ?? nil)
        let lost = try Self.object(ReadAPITests.get(port, "/v1/jobs/\(jobID)", key: read).body)
        #expect(lost["status"] as? String == "failed", "\(lost)")
        #expect((lost["error"] as? [String: Any])?["code"] as? String == "abandoned")
        // Its key is free: a retry computes anew (not replayed), and the lost job still reads failed.
        let retried = APITests.post(port, "/v1/estimate", key: read, body, headers: ["Idempotency-Key": "k"])
        #expect(retried.status == 422 && retried.headers["idempotent-replayed"] == nil, "\(retried)")
        #expect(try db.count("SELECT count(*) FROM bte.model_jobs") == 2)
        #expect(try db.count("SELECT count(*) FROM bte.model_jobs WHERE idempotency_key = 'k'") == 1)
        #expect(
            (try Self.object(ReadAPITests.get(port, "/v1/jobs/\(jobID)", key: read).body))["status"] as? String
                == "failed")
    }

    /// The job store against PostgreSQL: a reply the data decides (4xx) is kept under its key; a
    /// server-side failure (5xx) frees the key for a retry.
    @Test func aServerFailureFreesItsIdempotencyKey() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let store = try ModelStore(url: db.ingestURL)
        let w = APITests.workspace
        func create(_ key: String) throws -> ModelStore.JobCreation {
            try store.createJob(
                workspaceID: w, kind: "estimate", idempotencyKey: key, request: #"{"model":"state_space"}"#,
                deadlineSeconds: 600)
        }
        guard case .created(let first) = try create("a") else {
            Issue.record("the first request with a key is a new job")
            return
        }
        try store.finishJob(
            id: first, succeeded: false, httpStatus: 422, result: #"{"error":{"code":"x","message":"y"}}"#)
        guard case .existing(let kept) = try create("a") else {
            Issue.record("a 422 is replayed")
            return
        }
        #expect(kept.jobID == first && kept.httpStatus == 422)

        guard case .created(let second) = try create("b") else {
            Issue.record("another key is a new job")
            return
        }
        try store.finishJob(
            id: second, succeeded: false, httpStatus: 503, result: #"{"error":{"code":"x","message":"y"}}"#)
        guard case .created(let third) = try create("b") else {
            Issue.record("after a 503 the key computes anew")
            return
        }
        #expect(third != second)
        #expect(try store.job(id: second, workspaceID: w)?.httpStatus == 503)

        // A queued job's deadline starts when a worker takes it; a reply after the deadline is
        // not recorded (the job was reported lost, once).
        guard case .created(let queued) = try create("c") else {
            Issue.record("a new key is a new job")
            return
        }
        let connection = try db.admin()
        _ = try connection.execute("UPDATE bte.model_jobs SET deadline = now() - interval '1 second'")
        #expect(try store.job(id: queued, workspaceID: w)?.abandoned == true)
        try store.startJob(id: queued, deadlineSeconds: 600)
        #expect(try store.job(id: queued, workspaceID: w)?.abandoned == false)
        _ = try connection.execute(
            "UPDATE bte.model_jobs SET deadline = now() - interval '1 second' WHERE job_id = '\(queued)'")
        try store.finishJob(id: queued, succeeded: true, httpStatus: 200, result: "{}")
        let lost = try #require(try store.job(id: queued, workspaceID: w))
        #expect(lost.status == "failed" && lost.abandoned && lost.httpStatus == nil)
    }

    @Test func withoutADatabaseURLTheModelsEndpointsSayHowToEnableThem() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics()
        let read = try APITests.createKey(db, scope: "read", rate: 10_000)
        let port = freePort()
        // Not even from the environment (the test scripts set BTE_DATABASE_URL).
        let server = try APITests.serve(db, topics, port: port, environment: ["BTE_DATABASE_URL": ""])
        defer { server.signal(SIGKILL) }
        let reply = APITests.post(port, "/v1/estimate", key: read, #"{"model":"state_space"}"#)
        #expect(reply.status == 503 && Self.errorCode(reply.body) == "models_unavailable", "\(reply)")
        #expect(reply.body.contains("--database-url"))
    }
}

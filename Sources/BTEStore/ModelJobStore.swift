import BTEDomain
import Postgres

/// A model request run as a job (`bte.model_jobs`): the HTTP API's record of what it was asked,
/// its Idempotency-Key and, once finished, the reply it gave.
public struct ModelJob: Sendable, Equatable {
    public var jobID: String
    public var kind: String
    /// running, succeeded or failed; a job still running past its deadline was lost with its
    /// server and reads as failed with ``httpStatus`` nil.
    public var status: String
    public var httpStatus: Int?
    /// The reply's body (JSON text) once finished.
    public var result: String?
    public var createdAt: String
    public var finishedAt: String?
    public var abandoned: Bool

    public init(
        jobID: String, kind: String, status: String, httpStatus: Int?, result: String?, createdAt: String,
        finishedAt: String?, abandoned: Bool
    ) {
        self.jobID = jobID
        self.kind = kind
        self.status = status
        self.httpStatus = httpStatus
        self.result = result
        self.createdAt = createdAt
        self.finishedAt = finishedAt
        self.abandoned = abandoned
    }
}

extension ModelStore {
    /// How long a job and its Idempotency-Key are kept.
    public static let jobRetentionHours = 24

    public enum JobCreation: Sendable, Equatable {
        case created(jobID: String)
        /// The key's job within the retention window, asked the same thing.
        case existing(ModelJob)
        /// The key's job asked something else: the key can't be reused for it.
        case conflict(ModelJob)
    }

    /// Records a new running job, unless `idempotencyKey` already names one of this workspace's
    /// jobs from the last 24 hours. `request` is compared as JSON (member order and spacing
    /// don't matter).
    public func createJob(
        workspaceID: String, kind: String, idempotencyKey: String?, request: String, deadlineSeconds: Int
    ) throws -> JobCreation {
        let workspace = workspaceID.lowercased()
        return try connection.transaction {
            // Expired jobs go first, so an expired key is free again; so is the key of a job its
            // server lost (still running past its deadline): a retry computes anew.
            _ = try connection.execute(
                "DELETE FROM bte.model_jobs WHERE created_at < now() - make_interval(hours => $1::int)",
                [String(Self.jobRetentionHours)])
            _ = try connection.execute(
                """
                UPDATE bte.model_jobs SET idempotency_key = NULL
                WHERE project_id = $1 AND idempotency_key = $2 AND status = 'running' AND now() > deadline
                """, [workspace, idempotencyKey])
            if let id = try connection.execute(
                """
                INSERT INTO bte.model_jobs (project_id, kind, idempotency_key, request, status, deadline)
                VALUES ($1, $2, $3, $4::jsonb, 'running', now() + make_interval(secs => $5::int))
                ON CONFLICT (project_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
                RETURNING job_id::text
                """, [workspace, kind, idempotencyKey, request, String(deadlineSeconds)]
            ).rows.first?[0] {
                return .created(jobID: id)
            }
            guard
                let row = try connection.execute(
                    """
                    SELECT \(Self.jobColumns), kind = $3 AND request = $4::jsonb FROM bte.model_jobs
                    WHERE project_id = $1 AND idempotency_key = $2
                    """, [workspace, idempotencyKey, kind, request]
                ).rows.first
            else { throw StoreError(.jobVanished, "the job of an Idempotency-Key vanished; retry") }
            let job = Self.job(row)
            return row[9] == "t" ? .existing(job) : .conflict(job)
        }
    }

    /// A worker took the job: its deadline counts from now, not from when it was queued.
    public func startJob(id: String, deadlineSeconds: Int) throws {
        _ = try connection.execute(
            """
            UPDATE bte.model_jobs SET deadline = now() + make_interval(secs => $2::int)
            WHERE job_id = $1::uuid AND status = 'running'
            """, [id, String(deadlineSeconds)])
    }

    /// Records how a job ended: the reply's status and body. A server-side failure (5xx: the
    /// database or the broker was down) releases the job's Idempotency-Key, so a retry with it
    /// computes again rather than replaying the failure for a day. A job past its deadline was
    /// reported lost (and its key freed): it stays so, its status changes once.
    public func finishJob(id: String, succeeded: Bool, httpStatus: Int, result: String) throws {
        _ = try connection.execute(
            """
            UPDATE bte.model_jobs SET status = $2, http_status = $3::int, result = $4::jsonb, finished_at = now(),
                   idempotency_key = CASE WHEN $3::int >= 500 THEN NULL ELSE idempotency_key END
            WHERE job_id = $1::uuid AND status = 'running' AND now() <= deadline
            """, [id, succeeded ? "succeeded" : "failed", String(httpStatus), result])
    }

    /// One of the workspace's jobs (another workspace's reads as none).
    public func job(id: String, workspaceID: String) throws -> ModelJob? {
        guard canonicalUUID(id) != nil else { return nil }
        return try connection.execute(
            "SELECT \(Self.jobColumns) FROM bte.model_jobs WHERE job_id = $1::uuid AND project_id = $2",
            [id, workspaceID.lowercased()]
        ).rows.first.map(Self.job)
    }

    static let jobColumns = """
        job_id::text, kind, status, http_status::text, result::text,
        to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        status = 'running' AND now() > deadline, idempotency_key
        """

    static func job(_ row: [String?]) -> ModelJob {
        let abandoned = row[7] == "t"
        return ModelJob(
            jobID: row[0] ?? "", kind: row[1] ?? "", status: abandoned ? "failed" : row[2] ?? "",
            httpStatus: row[3].flatMap { Int($0) }, result: row[4], createdAt: row[5] ?? "", finishedAt: row[6],
            abandoned: abandoned)
    }
}

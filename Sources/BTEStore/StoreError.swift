import BTEDomain
import Postgres

/// Errors of the store that are not plain PostgreSQL errors.
public struct StoreError: CodedError {
    public enum Code: String, Sendable {
        case migrationsMissing = "store_migrations_missing"
        case migrationChanged = "store_migration_changed"
        case offsetFence = "store_offset_fence"
        case concurrentWriter = "store_concurrent_writer"
        case invalidThreshold = "store_invalid_threshold"
        case notDurable = "store_not_durable"
        case groupLocked = "store_group_locked"
        case replayStale = "store_replay_stale"
        case proposalAlreadyApplied = "store_proposal_already_applied"
        case proposalStale = "store_proposal_stale"
        case schemaMissing = "store_schema_missing"
        case invalidBoostRule = "store_invalid_boost_rule"
        case permission = "store_permission"
        case invalidSegment = "store_invalid_segment"
        case invalidBanditEntry = "store_invalid_bandit_entry"
        case jobVanished = "store_job_vanished"
        case unexpectedReply = "store_unexpected_reply"
        case invalidPrivacyRequest = "store_invalid_privacy_request"
        case privacyRequestConflict = "store_privacy_request_conflict"
        case privacyRequestUnsupported = "store_privacy_request_unsupported"
        case sealingFailed = "store_sealing_failed"
        case erasureWaited = "store_erasure_waited"
        case invalidLedger = "store_invalid_ledger"
        case readOnly = "store_read_only"
    }
    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// Another member moved the partition on, or stored the same ids: re-read and retry.
    public var isRetriable: Bool { code == .offsetFence || code == .concurrentWriter }
}

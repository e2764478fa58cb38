import BTEStore

/// The ledger and what the rebalance callbacks need, shared with them. Touched only from the
/// polling thread: librdkafka runs rebalance callbacks inside `poll`, on the caller's thread.
final class LedgerBox: @unchecked Sendable {
    var ledger = IngestLedger()
    /// Reads stored offsets on assignment; never used by a writer.
    var control: IngestStore?
    /// Waits for the writes in flight; set by the worker, called before partitions are revoked.
    var drain: (() -> Void)?
}

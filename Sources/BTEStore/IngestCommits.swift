/// The PostgreSQL notification channel ingest signals after every committed batch (payload:
/// its consumer group), so readers waiting for durability wake at once instead of polling.
public enum IngestCommits {
    public static let channel = "bte_ingest_committed"
}

/// The PostgreSQL notification channel ingest signals after every committed batch (payload:
/// its consumer group), so readers waiting for durability wake at once instead of polling.
public enum IngestCommits {
    public static let channel = "bte_ingest_committed"
}

/// The channel the sink notifies, at the commit of a batch that stored insight deliveries, so
/// the API's insight streams read them at once instead of at their next poll.
public enum DeliveryCommits {
    public static let channel = "bte_insight_deliveries_stored"
}

import BTEStore
import BTEWorker
import Kafka
import Postgres
import Testing

/// Which failures pause a worker and which end it: the same rule for ingest and the projector,
/// wherever the failure comes from (polling included).
@Suite struct RetryTests {
    struct Unknown: Error {}

    @Test func infrastructureIsRetriedAndTheRestEndsTheRun() {
        // A rebalance's failed assign surfaces from poll: transient.
        #expect(isRetriable(KafkaError(.assignment, "assign failed")))
        #expect(isRetriable(KafkaError(.delivery, "timed out")))
        #expect(!isRetriable(KafkaError(.fatal, "fenced")))
        #expect(!isRetriable(KafkaError(.configuration, "bad property")))
        #expect(isRetriable(PostgresError(.connection, message: "refused")))
        #expect(isRetriable(PostgresError(.server, sqlState: "57014", message: "statement timeout")))
        #expect(!isRetriable(PostgresError(.server, sqlState: "22P02", message: "invalid input")))
        #expect(isRetriable(StoreError(.notDurable, "behind")))
        #expect(isRetriable(StoreError(.offsetFence, "moved")))
        #expect(!isRetriable(Unknown()))
    }
}

import BTEStore
import Kafka
import Postgres

/// Whether a worker pauses and retries after `error` (infrastructure that may come back:
/// connections, timeouts, a broker away, another member's move, ingest behind) or ends with it
/// (configuration, a fatal client state, anything unknown). Data never gets here: it is rejected
/// per message.
public func isRetriable(_ error: any Error) -> Bool {
    switch error {
    case let error as PostgresError: return error.isRetriable
    case let error as KafkaError: return error.isRetriable
    case let error as StoreError: return error.isRetriable || error.code == .notDurable
    default: return false
    }
}

import Postgres

/// A consumer group's lock in PostgreSQL: every worker of the group holds it shared for as
/// long as it runs (on each of its connections), and `bte replay --execute` takes it
/// exclusively for the moment it moves the group's offsets. So a replay can't run under a live
/// worker, and a worker that starts meanwhile waits until the replay is committed.
public enum GroupLock {
    /// Advisory keys in their own class (the two-key form).
    static let key = "hashtext('bte.consumer_group'), hashtext($1)"

    /// Held until the connection closes.
    static func holdShared(_ group: String, on connection: PostgresConnection) throws {
        try connection.execute("SELECT pg_advisory_lock_shared(\(key))", [group])
    }

    /// Inside a transaction: whether no worker holds the lock; if so it is held until the end
    /// of the transaction.
    static func tryExclusive(_ group: String, on connection: PostgresConnection) throws -> Bool {
        try connection.execute("SELECT pg_try_advisory_xact_lock(\(key))", [group]).rows.first?[0] == "t"
    }
}

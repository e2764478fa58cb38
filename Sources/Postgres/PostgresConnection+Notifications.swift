import CLibPQ

#if canImport(Glibc)
    import Glibc
#endif

/// A `NOTIFY` received on a channel this connection listens to.
public struct PostgresNotification: Sendable, Equatable {
    public let channel: String
    public let payload: String
}

extension PostgresConnection {
    /// Starts listening on `channel` (an identifier). Notifications sent by transactions that
    /// commit from now on are queued for this connection, also while it runs other statements.
    public func listen(_ channel: String) throws {
        try execute("LISTEN \(quotedIdentifier(channel))")
    }

    /// The notifications already received, without waiting.
    public func pendingNotifications() throws -> [PostgresNotification] {
        try withHandle { conn in
            guard PQconsumeInput(conn) == 1 else { throw lostConnection() }
            return drainNotifications(conn)
        }
    }

    /// Waits up to `timeoutMilliseconds` for at least one notification; returns what arrived
    /// (empty on timeout). Must not be called inside a transaction: notifications are delivered
    /// between transactions.
    public func waitForNotifications(timeoutMilliseconds: Int) throws -> [PostgresNotification] {
        try withHandle { conn in
            guard PQconsumeInput(conn) == 1 else { throw lostConnection() }
            var received = drainNotifications(conn)
            guard received.isEmpty else { return received }
            let socket = PQsocket(conn)
            guard socket >= 0 else { throw lostConnection() }
            var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(clamping: max(timeoutMilliseconds, 0)))
            if ready < 0 && errno != EINTR { throw lostConnection() }
            if ready > 0 {
                guard PQconsumeInput(conn) == 1 else { throw lostConnection() }
                received = drainNotifications(conn)
            }
            return received
        }
    }

    private func drainNotifications(_ conn: OpaquePointer) -> [PostgresNotification] {
        var received: [PostgresNotification] = []
        while let notice = PQnotifies(conn) {
            received.append(
                PostgresNotification(
                    channel: String(cString: notice.pointee.relname), payload: String(cString: notice.pointee.extra)))
            PQfreemem(notice)
        }
        return received
    }

    private func lostConnection() -> PostgresError {
        PostgresError(.connection, sqlState: "08006", message: errorText)
    }
}

/// Quotes an identifier for statements that can't take it as a parameter (LISTEN).
func quotedIdentifier(_ name: String) -> String {
    "\"" + name.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\""
}

import CLibPQ

#if canImport(Glibc)
    import Glibc
#endif

/// Rows returned by a statement, copied out of libpq's result. Values are in text format.
public struct PostgresRows: Sendable {
    public let columns: [String]
    public let rows: [[String?]]
    /// Rows affected, for INSERT/UPDATE/DELETE/COPY.
    public let affected: Int

    public subscript(row: Int, column: String) -> String? {
        guard let index = columns.firstIndex(of: column) else { return nil }
        return rows[row][index]
    }
}

/// One row of a result, read in place from libpq's buffer: valid only inside the `query` body
/// it is handed to, so large reads make no intermediate copies of their rows.
public struct PostgresRow {
    fileprivate let result: OpaquePointer
    fileprivate let row: Int32

    public var columnCount: Int { Int(PQnfields(result)) }

    /// The value in text format, or nil for SQL NULL or a column out of range.
    public subscript(column: Int) -> String? {
        withBytes(column) { String(decoding: $0, as: UTF8.self) }
    }

    /// The value as a decimal integer; nil for NULL, another text or an overflow.
    public func int64(_ column: Int) -> Int64? { withBytes(column, Self.decimal) ?? nil }

    /// An optional minus sign and decimal digits as an Int64; nil for any other text or a value
    /// out of range (checked arithmetic: the text comes from outside).
    public static func decimal(_ bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
        let negative = bytes.first == UInt8(ascii: "-")
        var index = negative ? 1 : 0
        guard index < bytes.count else { return nil }
        var value: Int64 = 0
        while index < bytes.count {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            let (shifted, overflowed) = value.multipliedReportingOverflow(by: 10)
            let (next, carried) =
                negative
                ? shifted.subtractingReportingOverflow(Int64(digit)) : shifted.addingReportingOverflow(Int64(digit))
            guard !overflowed, !carried else { return nil }
            value = next
            index += 1
        }
        return value
    }

    /// Runs `body` over the value's bytes (text format, no terminator); nil for NULL.
    public func withBytes<R>(_ column: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R? {
        guard column >= 0, column < columnCount, PQgetisnull(result, row, Int32(column)) == 0,
            let value = PQgetvalue(result, row, Int32(column))
        else { return nil }
        let length = Int(PQgetlength(result, row, Int32(column)))
        return try value.withMemoryRebound(to: UInt8.self, capacity: length) {
            try body(UnsafeBufferPointer(start: $0, count: length))
        }
    }
}

/// How a connection notices a peer that stopped answering, and how long a statement may run.
/// Without keepalives a half-open connection (a server or network gone without a FIN) blocks
/// its caller forever, and the server side keeps the dead client's locks as long.
public struct PostgresConnectionOptions: Sendable {
    /// The session's `statement_timeout`; nil keeps the server's (0 there: none). A statement
    /// cut off fails with SQLSTATE 57014, which is retriable.
    public var statementTimeoutMilliseconds: Int?
    /// TCP keepalives: after this long idle, probe every `keepalivesIntervalSeconds`, and drop
    /// the connection after `keepalivesCount` unanswered probes (one minute by default).
    public var keepalivesIdleSeconds = 30
    public var keepalivesIntervalSeconds = 10
    public var keepalivesCount = 3
    /// Sent data unacknowledged this long drops the connection (`TCP_USER_TIMEOUT`, Linux).
    public var tcpUserTimeoutMilliseconds = 60_000
    /// Longest wait for the server to accept the connection.
    public var connectTimeoutSeconds = 15

    public init(statementTimeoutMilliseconds: Int? = nil) {
        self.statementTimeoutMilliseconds = statementTimeoutMilliseconds
    }

    /// libpq keywords, placed before the URL so that the URL's own values win.
    var keywords: [(String, String)] {
        [
            ("keepalives", "1"), ("keepalives_idle", String(keepalivesIdleSeconds)),
            ("keepalives_interval", String(keepalivesIntervalSeconds)), ("keepalives_count", String(keepalivesCount)),
            ("tcp_user_timeout", String(tcpUserTimeoutMilliseconds)),
            ("connect_timeout", String(connectTimeoutSeconds)),
        ]
    }
}

/// One libpq connection. Blocking: use it from one thread at a time.
public final class PostgresConnection {
    private let conn: OpaquePointer

    /// Connects with a libpq URI or keyword string, e.g. `postgresql://user@host:5432/db`.
    ///
    /// The client encoding is always UTF8, whatever the URL, the environment or the database
    /// say: text crosses as Swift strings, which are UTF-8, and any other client encoding would
    /// reinterpret their bytes. Keepalive and connect timeout settings in the URL win over
    /// `options`; the server is told the same keepalives, so it drops a vanished client (and
    /// its locks) too. `options.statementTimeoutMilliseconds` wins over the URL's.
    public init(
        url: String, applicationName: String = "bte", options: PostgresConnectionOptions = PostgresConnectionOptions()
    ) throws {
        // The URL is expanded in place of `dbname`: keywords after it override its values,
        // keywords before it are overridden by them.
        let parameters = options.keywords + [("dbname", url), ("client_encoding", "UTF8")]
        let connection: OpaquePointer? = withCStringArray(parameters.map(\.0), nullTerminated: true) { keywords in
            withCStringArray(parameters.map(\.1), nullTerminated: true) { values in
                PQconnectdbParams(keywords, values, 1)
            }
        }
        guard let conn = connection else {
            throw PostgresError(.connection, message: "PQconnectdbParams returned NULL (out of memory)")
        }
        guard PQstatus(conn) == CONNECTION_OK else {
            let message = PostgresConnection.errorMessage(conn)
            PQfinish(conn)
            throw PostgresError(.connection, sqlState: "08001", message: message)
        }
        self.conn = conn
        var settings = [("application_name", applicationName)]
        if connectionOption("keepalives") != "0" {
            let serverNames = [
                ("keepalives_idle", "tcp_keepalives_idle"), ("keepalives_interval", "tcp_keepalives_interval"),
                ("keepalives_count", "tcp_keepalives_count"), ("tcp_user_timeout", "tcp_user_timeout"),
            ]
            for (client, server) in serverNames {
                if let value = connectionOption(client), !value.isEmpty { settings.append((server, value)) }
            }
        }
        if let timeout = options.statementTimeoutMilliseconds {
            settings.append(("statement_timeout", String(timeout)))
        }
        let calls = settings.indices.map { "set_config($\(2 * $0 + 1), $\(2 * $0 + 2), false)" }
        try execute("SELECT " + calls.joined(separator: ", "), settings.flatMap { [$0.0, $0.1] })
    }

    deinit { PQfinish(conn) }

    /// The value libpq uses for a connection keyword (`keepalives_idle`, `connect_timeout`, …),
    /// nil if it has none.
    public func connectionOption(_ keyword: String) -> String? {
        guard let options = PQconninfo(conn) else { return nil }
        defer { PQconninfoFree(options) }
        var option = options
        while let name = option.pointee.keyword {
            if String(cString: name) == keyword { return option.pointee.val.map { String(cString: $0) } }
            option = option.advanced(by: 1)
        }
        return nil
    }

    /// False once the server or network dropped the connection.
    public var isHealthy: Bool { PQstatus(conn) == CONNECTION_OK }

    /// Lends the libpq handle to the connection's own extensions; it never leaves the module.
    func withHandle<R>(_ body: (OpaquePointer) throws -> R) rethrows -> R { try body(conn) }

    /// libpq's last error message for this connection.
    var errorText: String { PostgresConnection.errorMessage(conn) }

    /// Runs one statement with `$1…` parameters sent as text (`nil` is SQL NULL).
    @discardableResult
    public func execute(_ sql: String, _ parameters: [String?] = []) throws -> PostgresRows {
        try consume(run(sql, parameters), sql: sql)
    }

    /// Runs one statement like `execute` and decodes each row where libpq holds it; rows that
    /// `decode` returns nil for are left out.
    public func query<T>(_ sql: String, _ parameters: [String?] = [], _ decode: (PostgresRow) throws -> T?) throws
        -> [T]
    {
        let result = try checked(run(sql, parameters), sql: sql)
        defer { PQclear(result) }
        let rowCount = PQntuples(result)
        var out: [T] = []
        out.reserveCapacity(Int(rowCount))
        for row in 0..<rowCount {
            if let value = try decode(PostgresRow(result: result, row: row)) { out.append(value) }
        }
        return out
    }

    /// Runs several statements separated by semicolons, without parameters (migrations).
    public func executeScript(_ sql: String) throws {
        let result = PQexec(conn, sql)
        _ = try consume(result, sql: sql)
        // PQexec returns only the last result; earlier ones already failed fast server-side.
    }

    /// Runs `body` in a transaction: COMMIT if it returns, ROLLBACK if it throws.
    @discardableResult
    public func transaction<R>(_ begin: String = "BEGIN", _ body: () throws -> R) throws -> R {
        try execute(begin)
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            if isHealthy { _ = try? execute("ROLLBACK") }
            throw error
        }
    }

    /// Streams `data` into a `COPY … FROM STDIN` statement and returns the rows copied.
    @discardableResult
    public func copyIn(_ sql: String, data: [UInt8]) throws -> Int {
        let start = PQexec(conn, sql)
        guard let start else {
            throw PostgresError(.connection, sqlState: "08006", message: PostgresConnection.errorMessage(conn))
        }
        guard PQresultStatus(start) == PGRES_COPY_IN else {
            _ = try consume(start, sql: sql)
            PQclear(start)
            throw PostgresError(.protocolViolation, message: "\(sql) did not start COPY IN")
        }
        PQclear(start)
        let chunk = 1 << 20
        var sendError: String?
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let length = min(chunk, raw.count - offset)
                let sent =
                    raw.baseAddress.map { base in
                        PQputCopyData(
                            conn, base.advanced(by: offset).assumingMemoryBound(to: CChar.self), Int32(length))
                    } ?? -1
                if sent != 1 {
                    sendError = PostgresConnection.errorMessage(conn)
                    return
                }
                offset += length
            }
        }
        if PQputCopyEnd(conn, sendError) != 1 {
            sendError = sendError ?? PostgresConnection.errorMessage(conn)
        }
        var copied = 0
        var firstError: PostgresError?
        while let result = PQgetResult(conn) {
            do {
                copied += try consume(result, sql: sql).affected
            } catch let error as PostgresError {
                firstError = firstError ?? error
            }
        }
        if let firstError { throw firstError }
        if let sendError { throw PostgresError(.connection, sqlState: "08006", message: sendError) }
        return copied
    }

    /// Checks a result, copies its rows and frees it.
    private func consume(_ result: OpaquePointer?, sql: String) throws -> PostgresRows {
        let result = try checked(result, sql: sql)
        defer { PQclear(result) }
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        var columns: [String] = []
        columns.reserveCapacity(columnCount)
        for column in 0..<columnCount {
            columns.append(PQfname(result, Int32(column)).map { String(cString: $0) } ?? "")
        }
        var rows: [[String?]] = []
        rows.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            var values: [String?] = []
            values.reserveCapacity(columnCount)
            for column in 0..<columnCount {
                if PQgetisnull(result, Int32(row), Int32(column)) == 1 {
                    values.append(nil)
                } else {
                    values.append(PQgetvalue(result, Int32(row), Int32(column)).map { String(cString: $0) })
                }
            }
            rows.append(values)
        }
        let affected = PQcmdTuples(result).map { Int(String(cString: $0)) ?? 0 } ?? 0
        return PostgresRows(columns: columns, rows: rows, affected: affected)
    }

    /// Runs one statement with text parameters; the result is the caller's to check and clear.
    private func run(_ sql: String, _ parameters: [String?]) -> OpaquePointer? {
        withCStringArray(parameters) { values in
            PQexecParams(conn, sql, Int32(parameters.count), nil, values, nil, nil, 0)
        }
    }

    /// The result if it is a success (rows or a command); otherwise it is cleared and the error
    /// thrown.
    private func checked(_ result: OpaquePointer?, sql: String) throws -> OpaquePointer {
        guard let result else {
            throw PostgresError(.connection, sqlState: "08006", message: PostgresConnection.errorMessage(conn))
        }
        let status = PQresultStatus(result)
        switch status {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_SINGLE_TUPLE:
            return result
        case PGRES_COPY_IN:
            PQclear(result)
            throw PostgresError(.protocolViolation, message: "unexpected COPY IN for: \(sql.prefix(80))")
        default:
            defer { PQclear(result) }
            let sqlState = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            let message =
                PQresultErrorField(result, Int32(UInt8(ascii: "M"))).map { String(cString: $0) }
                ?? PostgresConnection.errorMessage(conn)
            let detail = PQresultErrorField(result, Int32(UInt8(ascii: "D"))).map { String(cString: $0) }
            let constraint = PQresultErrorField(result, Int32(UInt8(ascii: "n"))).map { String(cString: $0) }
            let connectionLost = PQstatus(conn) != CONNECTION_OK
            throw PostgresError(
                connectionLost && sqlState == nil ? .connection : .server,
                sqlState: sqlState ?? (connectionLost ? "08006" : nil), message: message, detail: detail,
                constraint: constraint)
        }
    }

    private static func errorMessage(_ conn: OpaquePointer) -> String {
        PQerrorMessage(conn).map { String(cString: $0) }?.trimmingTrailingWhitespace() ?? "unknown libpq error"
    }
}

/// Quotes a value as a SQL string literal (for the rare statement that can't take parameters).
public func sqlLiteral(_ value: String) -> String {
    "'" + value.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "''") + "'"
}

/// Passes an array of optional strings as `const char * const *` for the scope of `body`,
/// followed by a NULL if `nullTerminated` (as keyword/value arrays are).
private func withCStringArray<R>(
    _ values: [String?], nullTerminated: Bool = false, _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R
) -> R {
    if values.isEmpty && !nullTerminated { return body(nil) }
    var pointers: [UnsafeMutablePointer<CChar>?] =
        values.map { $0.flatMap { strdup($0) } } + (nullTerminated ? [nil] : [])
    defer { for pointer in pointers { free(pointer) } }
    return pointers.withUnsafeMutableBufferPointer { buffer in
        guard let base = buffer.baseAddress else { return body(nil) }
        return base.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) { body($0) }
    }
}

/// An error from PostgreSQL or from talking to it. Carries the server's SQLSTATE when there is
/// one, so callers can tell bad data from an unavailable server.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public var description: String { name }
        /// Could not connect, or the connection broke.
        public static let connection = Code(name: "pg_connection")
        /// The server refused a statement; see ``PostgresError/sqlState``.
        public static let server = Code(name: "pg_server")
        /// The COPY protocol failed on the client side.
        public static let copy = Code(name: "pg_copy")
        /// A result had an unexpected shape.
        public static let protocolViolation = Code(name: "pg_protocol")
    }

    public let code: Code
    /// Five-character SQLSTATE, e.g. `23505` (unique_violation) or `08006` (connection_failure).
    public let sqlState: String?
    public let message: String
    public let detail: String?
    /// The constraint that failed, for integrity violations that name one.
    public let constraint: String?
    public let location: String

    public init(
        _ code: Code, sqlState: String? = nil, message: String, detail: String? = nil, constraint: String? = nil,
        file: String = #fileID, line: Int = #line
    ) {
        self.code = code
        self.sqlState = sqlState
        self.message = message.trimmingTrailingWhitespace()
        self.detail = detail
        self.constraint = constraint
        self.location = "\(file):\(line)"
    }

    /// The SQLSTATE class: the first two characters.
    public var sqlStateClass: Substring? { sqlState.map { $0.prefix(2) } }

    /// Bad data in a statement: data exceptions (class 22) and integrity violations (class 23),
    /// except those the database's setup causes (``isConfigurationError``). Retrying the same
    /// rows fails the same way.
    public var isDataError: Bool {
        guard code == .server, let cls = sqlStateClass else { return false }
        return (cls == "22" || cls == "23") && !isConfigurationError
    }

    /// Class 22/23 errors that say the database is set up wrong, not that the row is bad:
    /// - 23514 naming no constraint: a row that no partition takes ("no partition of relation
    ///   … found for row", "violates partition constraint"), i.e. a month partition missing or
    ///   detached. A CHECK or domain constraint names itself and stays a data error.
    /// - 22P05 untranslatable_character: the database's encoding can't hold a character (in a
    ///   UTF8 database only jsonb's `\u0000` raises it, and validation refuses that).
    /// - 22021 character_not_in_repertoire: "invalid byte sequence" for the encoding the text is
    ///   read in. Connections always use client_encoding UTF8, and validation refuses invalid
    ///   UTF-8, NUL (raw or `\u0000`) and lone surrogates before a row is written, so no
    ///   validated row can raise it: if one does, its text was read in another encoding, which
    ///   is the connection's setup, not the data.
    /// Rejecting such rows would dead-letter valid data; they are retried until fixed.
    public var isConfigurationError: Bool {
        guard code == .server, let state = sqlState else { return false }
        return state == "22P05" || state == "22021" || (state == "23514" && constraint == nil)
    }

    /// Conditions outside the data that may clear up: lost connections, shutdowns, full disks,
    /// read-only servers, missing permissions, lock conflicts, missing partitions, a database
    /// encoding that can't hold the text.
    public var isRetriable: Bool {
        if code == .connection { return true }
        guard let state = sqlState, let cls = sqlStateClass else { return code != .protocolViolation }
        return ["08", "40", "53", "54", "55", "57", "58", "XX"].contains(cls)
            || state == "25006" || state == "42501" || state == "25P02" || state == "23505" || isConfigurationError
    }

    public var description: String {
        var text = "\(code)"
        if let sqlState { text += " [\(sqlState)]" }
        text += ": \(message)"
        if let detail, !detail.isEmpty { text += " (\(detail))" }
        return text
    }
}

extension String {
    func trimmingTrailingWhitespace() -> String {
        var result = self
        while let last = result.last, last.isWhitespace { result.removeLast() }
        return result
    }
}

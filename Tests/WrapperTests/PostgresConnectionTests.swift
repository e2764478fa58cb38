import BTETestSupport
import Postgres
import Testing

@Suite(.serialized) struct PostgresConnectionTests {
    func connect() throws -> PostgresConnection {
        try PostgresConnection(url: try TestEnvironment.postgresBaseURL() + "/postgres")
    }

    @Test func parameterizedQueryReturnsTextRows() throws {
        let db = try connect()
        let rows = try db.execute("SELECT $1::int + 1 AS n, $2::text AS t, NULL::text AS z", ["41", "it's"])
        #expect(rows.columns == ["n", "t", "z"])
        #expect(rows.rows == [["42", "it's", nil]])
        #expect(rows[0, "n"] == "42")
    }

    @Test func serverErrorsCarrySQLState() throws {
        let db = try connect()
        try db.execute("CREATE TEMP TABLE t (id int PRIMARY KEY)")
        try db.execute("INSERT INTO t VALUES (1)")
        let duplicate = #expect(throws: PostgresError.self) { try db.execute("INSERT INTO t VALUES (1)") }
        #expect(duplicate?.sqlState == "23505")
        #expect(duplicate?.code == .server)
        #expect(duplicate?.isDataError == true)
        let syntax = #expect(throws: PostgresError.self) { try db.execute("SELEC 1") }
        #expect(syntax?.sqlState == "42601")
        #expect(syntax?.isRetriable == false)
        let badInput = #expect(throws: PostgresError.self) { try db.execute("SELECT $1::uuid", ["nope"]) }
        #expect(badInput?.sqlState == "22P02")
        #expect(badInput?.isDataError == true)
        // The connection is still usable after errors.
        #expect(try db.execute("SELECT 1").rows == [["1"]])
    }

    @Test func connectionFailureIsRetriable() {
        let error = #expect(throws: PostgresError.self) {
            _ = try PostgresConnection(url: "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
        }
        #expect(error?.code == .connection)
        #expect(error?.isRetriable == true)
        #expect(error?.isDataError == false)
    }

    @Test func transactionRollsBackOnError() throws {
        let db = try connect()
        try db.execute("CREATE TEMP TABLE r (v text)")
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try db.transaction {
                try db.execute("INSERT INTO r VALUES ('a')")
                throw Boom()
            }
        }
        try db.transaction { try db.execute("INSERT INTO r VALUES ('b')") }
        #expect(try db.execute("SELECT v FROM r").rows == [["b"]])
    }

    @Test func copyInStreamsRowsAndReportsBadData() throws {
        let db = try connect()
        try db.execute("CREATE TEMP TABLE c (id int, note text, payload bytea)")
        // Text format: tab-separated, \N is NULL, backslashes escaped.
        let data = Array("1\thello\t\\\\x6869\n2\t\\N\t\\N\n3\ttab\\there\t\\\\x\n".utf8)
        #expect(try db.copyIn("COPY c FROM STDIN", data: data) == 3)
        let rows = try db.execute("SELECT id, note, encode(payload, 'escape') FROM c ORDER BY id").rows
        #expect(rows == [["1", "hello", "hi"], ["2", nil, nil], ["3", "tab\there", ""]])
        let bad = #expect(throws: PostgresError.self) { try db.copyIn("COPY c FROM STDIN", data: Array("x\ty\t\\N\n".utf8)) }
        #expect(bad?.sqlState == "22P02")
        #expect(try db.execute("SELECT count(*) FROM c").rows == [["3"]])
    }
}

/// Which failures pause ingest (retriable) and which are bad data: the line between retrying
/// and dead-lettering.
@Suite struct PostgresErrorClassificationTests {
    @Test(arguments: [
        ("08006", true, false),  // connection_failure
        ("57P01", true, false),  // admin_shutdown
        ("53100", true, false),  // disk_full
        ("25006", true, false),  // read_only_sql_transaction
        ("42501", true, false),  // insufficient_privilege
        ("40P01", true, false),  // deadlock_detected
        ("23505", true, true),  // unique_violation: a concurrent writer; retry sees the winner
        ("22P02", false, true),  // invalid_text_representation
        ("22003", false, true),  // numeric_value_out_of_range
        ("23514", false, true),  // check_violation
        ("42601", false, false),  // syntax_error: a bug, not data
    ])
    func classification(sqlState: String, retriable: Bool, data: Bool) {
        let error = PostgresError(.server, sqlState: sqlState, message: "x")
        #expect(error.isRetriable == retriable, "\(sqlState) retriable")
        #expect(error.isDataError == data, "\(sqlState) data")
    }
}

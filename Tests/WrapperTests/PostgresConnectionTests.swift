import BTETestSupport
import Foundation
import Postgres
import PropertyBased
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

    /// `query` hands each row to its decoder where libpq holds it: the same text values as
    /// `execute`, NULL as nil, rows the decoder declines left out.
    @Test func queryDecodesRowsInPlace() throws {
        let db = try connect()
        let sql = """
            SELECT * FROM (VALUES (1, 'one', NULL::text, '{"a":[1,2]}'), (2, 'two', 'x', '{}'),
                (-9223372036854775808, 'min', 'y', 'not json')) AS v(n, name, maybe, doc) ORDER BY n
            """
        let rows = try db.query(sql) { row -> (Int64, String, String?, Int, Int?)? in
            guard let n = row.int64(0), let name = row[1], n != 2 else { return nil }
            // Bytes are read in place, without a terminator.
            let length = row.withBytes(3) { $0.count }
            return (n, name, row[2], row.columnCount, length.flatMap { $0 } == nil ? nil : length)
        }
        #expect(rows.map(\.0) == [Int64.min, 1])
        #expect(rows.map(\.1) == ["min", "one"])
        #expect(rows.map(\.2) == ["y", nil])
        #expect(rows.map(\.3) == [4, 4])
        // "not json" is 8 bytes; {"a":[1,2]} is 11.
        #expect(rows.map(\.4) == [8, 11])
        let outside = try db.query("SELECT 'a'::text, NULL::bigint") { row in [row[2], row[-1], row[1]] }
        #expect(outside == [[nil, nil, nil]])
        let text = try db.query("SELECT 'x' || $1", ["y"]) { row in row.int64(0) == nil ? row[0] : nil }
        #expect(text == ["xy"])
        let syntax = #expect(throws: PostgresError.self) { try db.query("SELEC 1") { $0[0] } }
        #expect(syntax?.sqlState == "42601")
        #expect(try db.query("SELECT 1") { $0.int64(0) } == [1])
    }

    /// The decimal reader takes what Swift's own does, minus a leading plus (the server never
    /// writes one), and refuses overflow instead of wrapping.
    @Test func decimalsParseLikeSwiftAndRefuseOverflow() async {
        func decimal(_ text: String) -> Int64? {
            Array(text.utf8).withUnsafeBufferPointer { PostgresRow.decimal($0) }
        }
        #expect(decimal("9223372036854775807") == Int64.max)
        #expect(decimal("9223372036854775808") == nil)
        #expect(decimal("-9223372036854775808") == Int64.min)
        #expect(decimal("-9223372036854775809") == nil)
        #expect(decimal("00000000000000000000000042") == 42)
        #expect(decimal("") == nil)
        #expect(decimal("-") == nil)
        #expect(decimal("+1") == nil)
        #expect(decimal("1.5") == nil)
        await propertyCheck(count: 2_000, input: Gen.int64(in: Int64.min...Int64.max)) { n in
            #expect(decimal(String(n)) == n)
        }
        let characters = Gen<Character?>.element(of: Array("-0123456789+ x")).map { $0 ?? "0" }
        await propertyCheck(count: 2_000, input: characters.string(of: 0...24)) { text in
            #expect(decimal(text) == (text.first == "+" ? nil : Int64(text)))
        }
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
        // A CHECK names its constraint: bad data. A row no partition takes names none: the
        // partitions are missing, which the data can't fix.
        try db.execute("CREATE TEMP TABLE checked (v int CHECK (v > 0))")
        let check = #expect(throws: PostgresError.self) { try db.execute("INSERT INTO checked VALUES (-1)") }
        #expect(check?.sqlState == "23514")
        #expect(check?.constraint == "checked_v_check")
        #expect(check?.isDataError == true)
        #expect(check?.isRetriable == false)
        try db.execute("CREATE TEMP TABLE parted (v int) PARTITION BY RANGE (v)")
        let unrouted = #expect(throws: PostgresError.self) { try db.execute("INSERT INTO parted VALUES (1)") }
        #expect(unrouted?.sqlState == "23514")
        #expect(unrouted?.constraint == nil)
        #expect(unrouted?.isDataError == false)
        #expect(unrouted?.isRetriable == true)
        // The connection is still usable after errors.
        #expect(try db.execute("SELECT 1").rows == [["1"]])
    }

    /// Keepalives and timeouts reach libpq (the client's socket) and the server (its socket and
    /// the session), so either end notices a peer that stopped answering.
    @Test func connectionOptionsReachBothEnds() throws {
        var options = PostgresConnectionOptions(statementTimeoutMilliseconds: 1_500)
        options.keepalivesIdleSeconds = 17
        options.keepalivesIntervalSeconds = 7
        options.keepalivesCount = 4
        options.tcpUserTimeoutMilliseconds = 45_000
        options.connectTimeoutSeconds = 9
        let db = try PostgresConnection(url: try TestEnvironment.postgresBaseURL() + "/postgres", options: options)
        #expect(db.connectionOption("keepalives") == "1")
        #expect(db.connectionOption("keepalives_idle") == "17")
        #expect(db.connectionOption("keepalives_interval") == "7")
        #expect(db.connectionOption("keepalives_count") == "4")
        #expect(db.connectionOption("tcp_user_timeout") == "45000")
        #expect(db.connectionOption("connect_timeout") == "9")
        let shown = try db.execute(
            """
            SELECT current_setting('statement_timeout'), current_setting('tcp_keepalives_idle'),
                   current_setting('tcp_keepalives_interval'), current_setting('tcp_keepalives_count'),
                   current_setting('tcp_user_timeout'), current_setting('client_encoding')
            """
        ).rows
        #expect(shown == [["1500ms", "17", "7", "4", "45000", "UTF8"]])
    }

    /// Defaults: keepalives after 30 s idle, probes every 10 s, 3 of them; unacknowledged data
    /// for 60 s drops the connection; the statement timeout is the server's unless given.
    @Test func defaultConnectionOptions() throws {
        let db = try connect()
        #expect(db.connectionOption("keepalives_idle") == "30")
        #expect(db.connectionOption("connect_timeout") == "15")
        let shown = try db.execute(
            """
            SELECT current_setting('tcp_keepalives_idle'), current_setting('tcp_keepalives_interval'),
                   current_setting('tcp_keepalives_count'), current_setting('tcp_user_timeout'),
                   current_setting('statement_timeout')
            """
        ).rows
        #expect(shown == [["30", "10", "3", "60000", "0"]])
    }

    /// Keepalive settings in the URL win over the defaults, at both ends.
    @Test func urlKeepalivesWin() throws {
        let db = try PostgresConnection(
            url: try TestEnvironment.postgresBaseURL() + "/postgres?keepalives_idle=11&connect_timeout=2")
        #expect(db.connectionOption("keepalives_idle") == "11")
        #expect(db.connectionOption("connect_timeout") == "2")
        #expect(try db.execute("SHOW tcp_keepalives_idle").rows == [["11"]])
    }

    /// A statement cut off by statement_timeout is query_canceled: retriable, not bad data.
    @Test func statementTimeoutIsRetriable() throws {
        let db = try PostgresConnection(
            url: try TestEnvironment.postgresBaseURL() + "/postgres",
            options: PostgresConnectionOptions(statementTimeoutMilliseconds: 500))
        let started = Date()
        let error = #expect(throws: PostgresError.self) { try db.execute("SELECT pg_sleep(2)") }
        #expect(Date().timeIntervalSince(started) < 1.9)
        #expect(error?.sqlState == "57014")
        #expect(error?.isRetriable == true)
        #expect(error?.isDataError == false)
        #expect(try db.execute("SELECT 1").rows == [["1"]])
    }

    /// Every connection speaks UTF-8, even if its URL asks for another encoding: text is passed
    /// as Swift strings, which are UTF-8.
    @Test func clientEncodingIsAlwaysUTF8() throws {
        let url = try TestEnvironment.postgresBaseURL() + "/postgres?client_encoding=LATIN1"
        #expect(try PostgresConnection(url: url).execute("SHOW client_encoding").rows == [["UTF8"]])
    }

    /// A LATIN1 database (whose default client encoding is LATIN1) converts to and from UTF-8.
    @Test func latin1DatabaseReadsAndWritesUTF8() throws {
        let name = TestEnvironment.uniqueName("bte_latin1_")
        let server = try connect()
        try server.execute("CREATE DATABASE \(name) ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
        defer { _ = try? server.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
        let db = try PostgresConnection(url: try TestEnvironment.postgresBaseURL() + "/" + name)
        #expect(try db.execute("SHOW server_encoding").rows == [["LATIN1"]])
        // "é" is two bytes in UTF-8 and one character (one byte) in LATIN1; chr(233) is é in LATIN1.
        #expect(
            try db.execute("SELECT $1::text, length($1::text), octet_length($1::text), chr(233)", ["é"]).rows == [
                ["é", "1", "1", "é"]
            ])
        // A character LATIN1 can't hold is an untranslatable character: the database's encoding
        // is at fault, not the data.
        let untranslatable = #expect(throws: PostgresError.self) { try db.execute("SELECT $1::text", ["日本"]) }
        #expect(untranslatable?.sqlState == "22P05")
        #expect(untranslatable?.isDataError == false)
        #expect(untranslatable?.isRetriable == true)
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
        let bad = #expect(throws: PostgresError.self) {
            try db.copyIn("COPY c FROM STDIN", data: Array("x\ty\t\\N\n".utf8))
        }
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
        ("23514", true, false),  // check_violation naming no constraint: no partition for the row
        ("22021", true, false),  // character_not_in_repertoire: the database's encoding
        ("22P05", true, false),  // untranslatable_character: the database's encoding
        ("23502", false, true),  // not_null_violation
        ("42601", false, false),  // syntax_error: a bug, not data
    ])
    func classification(sqlState: String, retriable: Bool, data: Bool) {
        let error = PostgresError(.server, sqlState: sqlState, message: "x")
        #expect(error.isRetriable == retriable, "\(sqlState) retriable")
        #expect(error.isDataError == data, "\(sqlState) data")
    }

    @Test func checkViolationOfANamedConstraintIsData() {
        let error = PostgresError(.server, sqlState: "23514", message: "x", constraint: "t_v_check")
        #expect(error.isDataError)
        #expect(!error.isRetriable)
    }
}

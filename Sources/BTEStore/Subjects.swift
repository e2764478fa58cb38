import BTEDomain
import Crypto
import Foundation
import Postgres

#if canImport(Glibc)
    import Glibc
#endif

/// The id and key that stand for one person in the logs. Deleting them erases the person: the
/// rows keep the id, which no longer leads to anyone, and sealed content nobody can open.
public struct Subject: Sendable {
    public let id: String
    let key: [UInt8]
    /// Made once: a subject seals and pseudonymizes every row of its person in a batch. The key
    /// is immutable once made (its bytes are never written again), so sharing it is safe.
    nonisolated(unsafe) private let symmetric: SymmetricKey
    /// The stand-ins' MAC with its key already absorbed: each stand-in copies it (the copy shares
    /// the state until it is written to) instead of preparing the key again.
    nonisolated(unsafe) private let mac: HMAC<SHA256>

    init(id: String, key: [UInt8]) {
        self.id = id
        self.key = key
        symmetric = SymmetricKey(data: key)
        mac = HMAC<SHA256>(key: symmetric)
    }

    /// A new subject: a random id and a random 256-bit key.
    static func generate() -> Subject {
        Subject(id: UUID().uuidString.lowercased(), key: SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
    }

    /// `text` encrypted and authenticated under the subject's key (AES-256-GCM): nonce,
    /// ciphertext and tag, 28 bytes more than the text.
    func seal(_ text: [UInt8], nonces: inout NonceSource) throws -> [UInt8] {
        do {
            let box = try AES.GCM.seal(text, using: symmetric, nonce: try nonces.take())
            guard let combined = box.combined else {
                throw StoreError(.sealingFailed, "AES-GCM gave no combined form")
            }
            return Array(combined)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.sealingFailed, "could not seal a record's personal content: \(error)")
        }
    }

    /// What `seal` sealed; throws when the bytes were not sealed under this key or were altered.
    func open(_ sealed: [UInt8]) throws -> [UInt8] {
        do {
            let box = try AES.GCM.SealedBox(combined: sealed)
            return Array(try AES.GCM.open(box, using: symmetric))
        } catch {
            throw StoreError(.sealingFailed, "a sealed record does not open under its subject's key")
        }
    }

    /// A stand-in for one of the person's own identifiers (a session id): the same text gives the
    /// same stand-in, so the computations that count distinct sessions count alike, and without
    /// the key nobody can tell which text it stood for.
    func pseudonym(_ text: String) -> String {
        var mac = self.mac
        mac.update(data: Array(text.utf8))
        return "s-" + hexString(Array(mac.finalize().prefix(16)))
    }
}

/// Random 96-bit nonces for sealing, drawn from a buffer the kernel's generator fills 512 at a
/// time: one system call per 512 rows instead of one or two a row. Random nonces under one key
/// repeat with negligible probability for far more messages than a person ever has.
struct NonceSource {
    private var buffer: [UInt8] = []
    private var next = 0
    static let nonceBytes = 12
    static let perFill = 512

    init() {}

    mutating func take() throws -> AES.GCM.Nonce {
        if next + Self.nonceBytes > buffer.count {
            buffer = try Self.random(Self.nonceBytes * Self.perFill)
            next = 0
        }
        defer { next += Self.nonceBytes }
        return try AES.GCM.Nonce(data: buffer[next..<next + Self.nonceBytes])
    }

    /// `count` bytes of the kernel's generator (`/dev/urandom`, which never blocks once the
    /// system has seeded it).
    private static func random(_ count: Int) throws -> [UInt8] {
        let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError(.sealingFailed, "cannot open /dev/urandom (errno \(errno))") }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        try bytes.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress else { return }
            while filled < count {
                let got = read(fd, base + filled, count - filled)
                if got < 0 && errno == EINTR { continue }
                guard got > 0 else {
                    throw StoreError(.sealingFailed, "reading /dev/urandom failed (errno \(errno))")
                }
                filled += got
            }
        }
        return bytes
    }
}

/// How the privacy tables name a person without holding their user id: lowercase hex SHA-256 of
/// `<workspace_id>/<user_id>`, a UUID user id in lowercase (as requests and the logs match them).
/// Whoever knows the id can compute it (to ask about a request, suppress or audit); the tables
/// alone don't say who it is.
public enum PersonReference {
    public static func of(_ person: UserKey) -> String {
        let user = canonicalUUID(person.userID) ?? person.userID
        return hexString(Array(SHA256.hash(data: Array("\(person.workspaceID)/\(user)".utf8))))
    }
}

/// The subjects of people, read and created in the caller's transaction.
struct SubjectDirectory {
    let connection: PostgresConnection

    /// People are held by bucket (of `personBuckets`, by a hash of workspace/user): a batch
    /// takes at most that many locks however many people it names, well within PostgreSQL's lock
    /// table, and an erasure briefly holds up only the batches naming someone in its buckets.
    static let personBuckets = 128

    /// The buckets of these people, as SQL over `$1` (their `workspace/user` names), in order.
    private static func buckets(_ names: String) -> String {
        "SELECT DISTINCT hashtext(p) & \(personBuckets - 1) AS b FROM unnest(\(names)::text[]) AS p ORDER BY b"
    }

    /// Holds these people until the transaction ends (a shared lock on each one's bucket, in one
    /// order): an erasure of one of them waits for the batch and then erases what it stored, and
    /// a batch waits for an erasure and then reads the suppressions and subjects it left. Take it
    /// before reading either. An erasure holds its people `exclusively`.
    func hold(_ people: [UserKey], exclusively: Bool = false) throws {
        let names = Set(people.map { $0.workspaceID + "/" + (canonicalUUID($0.userID) ?? $0.userID) })
        guard !names.isEmpty else { return }
        let lock = exclusively ? "pg_advisory_xact_lock" : "pg_advisory_xact_lock_shared"
        try connection.execute(
            "SELECT \(lock)(hashtext('bte.person'), b) FROM (\(Self.buckets("$1"))) held", [arrayLiteral(Array(names))])
    }

    /// The subject of each person, created for those who have none (read first: most people
    /// have one, and an insert that conflicts costs more than a lookup).
    func subjects(for people: Set<UserKey>) throws -> [UserKey: Subject] {
        guard !people.isEmpty else { return [:] }
        let ordered = people.sorted()
        var found = try existing(ordered)
        let missing = ordered.filter { found[$0] == nil }
        guard !missing.isEmpty else { return found }
        let fresh = missing.map { _ in Subject.generate() }
        // Inserting in one order keeps two writers that meet the same new people from deadlocking.
        try connection.execute(
            """
            INSERT INTO bte_keys.subjects (subject, workspace_id, user_id, key)
            SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bytea[])
            ON CONFLICT (workspace_id, user_id) DO NOTHING
            """,
            [
                arrayLiteral(fresh.map(\.id)), arrayLiteral(missing.map(\.workspaceID)),
                arrayLiteral(missing.map(\.userID)), arrayLiteral(fresh.map { "\\x" + hexString($0.key) }),
            ])
        found.merge(try existing(missing)) { $1 }
        guard found.count == people.count else {
            throw StoreError(.concurrentWriter, "a person's subject was neither created nor found; retrying the batch")
        }
        return found
    }

    /// The newest erasure's sequence number: a cache of subjects is good until it changes.
    func newestErasure() throws -> Int64 {
        try connection.execute("SELECT coalesce(max(seq), 0) FROM privacy.erasures").rows.first?[0].flatMap {
            Int64($0)
        } ?? 0
    }

    /// The existing subjects of these people (none is created).
    func existing(_ people: [UserKey]) throws -> [UserKey: Subject] {
        guard !people.isEmpty else { return [:] }
        var found: [UserKey: Subject] = [:]
        for row in try connection.execute(
            """
            SELECT s.subject::text, s.workspace_id::text, s.user_id, encode(s.key, 'hex')
            FROM bte_keys.subjects s JOIN unnest($1::uuid[], $2::text[]) AS p (workspace_id, user_id)
              ON s.workspace_id = p.workspace_id AND s.user_id = p.user_id
            """, [arrayLiteral(people.map(\.workspaceID)), arrayLiteral(people.map(\.userID))]
        ).rows {
            guard let id = row[0], let workspace = row[1], let user = row[2], let key = row[3].flatMap(bytes(hex:)),
                key.count == 32
            else { continue }
            found[UserKey(workspaceID: workspace, userID: user)] = Subject(id: id, key: key)
        }
        return found
    }
}

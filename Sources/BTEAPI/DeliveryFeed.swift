import BTEDomain
import BTEStore
import Metrics

/// One reader of new deliveries for every open stream of a server: it polls the stored order of
/// all workspaces' deliveries (at once when the sink notifies a commit, at most every `poll`) and
/// hands each row to the streams of its (workspace, user), so the
/// database sees the same few queries a second whether 1 or 10,000 streams are open. A row is
/// handed on as soon as it is readable; a stream drops what it already sent by the user's seq
/// (one sink member stores a user's rows, in seq order).
///
/// Each stream has a bounded buffer; one that falls that far behind (a slow client) is ended, so
/// it never holds rows for long or slows the others, and its client resumes with `Last-Event-ID`.
actor DeliveryFeed {
    enum Item: Sendable {
        case delivery(ProjectionReader.StreamedDelivery)
        case heartbeat
    }

    typealias Subscription = (id: Int, items: AsyncStream<Item>)

    private let readers: ReaderPool
    /// Its own connection: it listens for the sink's commits between reads.
    private let listener: SerialClient<ProjectionReader>
    private let poll: Duration
    private let heartbeat: Duration
    private let buffer: Int
    private var subscribers: [UserKey: [Int: AsyncStream<Item>.Continuation]] = [:]
    private var count = 0
    private var nextID = 0
    private var poller: Task<Void, Never>?
    private var cursor: ProjectionReader.FeedCursor?
    private let open = Gauge(label: "bte_insight_streams_open")
    private let overflows = Counter(label: "bte_insight_stream_overflows_total")

    init(readers: ReaderPool, readerURL: String, poll: Duration, heartbeat: Duration, buffer: Int) {
        self.readers = readers
        listener = SerialClient(
            label: "bte.api.feed",
            open: {
                let reader = try ProjectionReader(url: readerURL)
                try reader.listenForDeliveries()
                return reader
            }, healthy: { $0.isHealthy })
        self.poll = poll
        self.heartbeat = heartbeat
        self.buffer = buffer
    }

    /// A stream of the user's deliveries stored from now on. Once it returns, the feed passes
    /// every row stored later, so a catch-up read started after it misses nothing; rows it reads
    /// twice the caller drops by seq.
    func subscribe(_ user: UserKey) async throws -> Subscription {
        nextID += 1
        let id = nextID
        let (items, continuation) = AsyncStream.makeStream(of: Item.self, bufferingPolicy: .bufferingOldest(buffer))
        subscribers[user, default: [:]][id] = continuation
        count += 1
        open.record(count)
        if cursor == nil {
            do {
                let start = try await readers.read { try $0.feedStart() }
                if cursor == nil { cursor = start }
            } catch {
                cancel(user, id)
                throw error
            }
        }
        if poller == nil { poller = Task { await self.run() } }
        return (id, items)
    }

    /// Ends a stream (its client left, or it failed): nothing more is kept for it.
    func cancel(_ user: UserKey, _ id: Int) {
        guard let continuation = subscribers[user]?.removeValue(forKey: id) else { return }
        continuation.finish()
        if subscribers[user]?.isEmpty == true { subscribers[user] = nil }
        count -= 1
        open.record(count)
    }

    private func run() async {
        var quiet = ContinuousClock.now
        // Rows after the cursor already handed on: read again until they are settled.
        var passed: Set<ProjectionReader.FeedCursor> = []
        while count > 0, let from = cursor {
            var full = false
            do {
                let rows = try await listener.run { try $0.feed(after: from, limit: Self.page) }
                for row in rows where !passed.contains(row.cursor) {
                    if let delivery = row.delivery { send(.delivery(delivery), to: row.user) }
                    passed.insert(row.cursor)
                }
                if let settled = rows.prefix(while: \.settled).last?.cursor {
                    cursor = settled
                    passed = passed.filter { settled < $0 }
                }
                full = rows.count == Self.page && rows.last?.settled == true
            } catch {
                // The database is away: streams stay open and the feed reads on from where it was.
            }
            if ContinuousClock.now - quiet >= heartbeat {
                for user in Array(subscribers.keys) { send(.heartbeat, to: user) }
                quiet = ContinuousClock.now
            }
            if !full { await wait() }
        }
        // No stream is open: the next one starts from its own now.
        poller = nil
        cursor = nil
    }

    static let page = 1_000

    /// Until the sink notifies a commit of deliveries, or `poll` at most (a notification can't
    /// be missed for longer: a commit without one, or a lost connection, is read on the poll).
    private func wait() async {
        let milliseconds = Int(poll.components.seconds * 1_000 + poll.components.attoseconds / 1_000_000_000_000_000)
        do {
            _ = try await listener.run { try $0.awaitDeliveries(timeoutMilliseconds: milliseconds) }
        } catch {
            try? await Task.sleep(for: poll)
        }
    }

    private func send(_ item: Item, to user: UserKey) {
        guard let streams = subscribers[user] else { return }
        for (id, continuation) in streams {
            if case .dropped = continuation.yield(item) {
                overflows.increment()
                cancel(user, id)
            }
        }
    }
}

import BTEStore
import BTEWorker
import Dispatch
import Kafka

/// One writer: its own PostgreSQL connection and dead-letter producer, and the batches handed
/// to it, written in order on its own serial queue. `store` is replaced by the polling thread
/// only while nothing is queued; `flights` is touched by the polling thread only.
final class WriteLane: @unchecked Sendable {
    let index: Int
    var store: IngestStore?
    let deadLetters: KafkaProducer
    let queue: DispatchQueue
    /// Batches handed to the lane and not yet booked, oldest first.
    var flights: [InFlight] = []

    final class InFlight: @unchecked Sendable {
        let done = DispatchGroup()
        /// The batch's id in the ledger.
        let id: Int
        let consumed: Int
        /// Messages of the batch per topic, for the per-topic reject ratio.
        let consumedByTopic: [String: Int]
        let started = DispatchTime.now()
        /// The batch's spans, when spans are exported.
        let trace: BatchTrace?
        // Written by the lane's queue before `done` is left, read after `done.wait()`.
        var result: Result<IngestOutcome, any Error> = .failure(CancellationError())
        var queuedNanoseconds: UInt64 = 0
        var validateNanoseconds: UInt64 = 0
        var commitNanoseconds: UInt64 = 0
        init(id: Int, consumed: Int, consumedByTopic: [String: Int] = [:], trace: BatchTrace? = nil) {
            self.id = id
            self.consumed = consumed
            self.consumedByTopic = consumedByTopic
            self.trace = trace
        }
    }

    init(index: Int, deadLetters: KafkaProducer) {
        self.index = index
        self.deadLetters = deadLetters
        self.queue = DispatchQueue(label: "bte.ingest.writer.\(index)")
    }
}

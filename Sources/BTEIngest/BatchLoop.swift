import BTEStore
import BTEWorker
import Dispatch
import Foundation
import Kafka
import Logging
import Postgres

/// What ingest and the sink do alike around their batches, over the ledger they share with
/// their rebalance callbacks: connect with backoff, collect a batch, hold off after an
/// infrastructure error, restart partitions from the offsets PostgreSQL holds. The ledger is
/// reached through its holder every time: a rebalance inside `poll` changes it.
protocol LedgerHolding: AnyObject, Sendable {
    var ledger: IngestLedger { get set }
}

extension LedgerBox: LedgerHolding {}
extension SinkBox: LedgerHolding {}

extension LedgerHolding {
    /// A batch closes at `maxBatchMessages` or `maxBatchBytes`, after `maxBatchWaitMilliseconds`,
    /// after a 20 ms gap in the input, or, once `linger` milliseconds have passed since its first
    /// message, as soon as nothing fetched is waiting (with 0, at once): a steady stream below
    /// saturation is committed within milliseconds, while a backlog still fills whole batches.
    func collectBatch(
        _ consumer: KafkaConsumer, configuration: IngestConfiguration, linger: Int, stop: StopSignal
    ) throws -> [KafkaMessage] {
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(configuration.maxBatchWaitMilliseconds) * 1_000_000
        var lingerEnds = UInt64.max
        while ledger.collected.count < configuration.maxBatchMessages,
            ledger.collectedBytes < configuration.maxBatchBytes, !stop.isSet
        {
            let now = DispatchTime.now().uptimeNanoseconds
            if now >= deadline { break }
            let remaining = Int32(min((deadline - now) / 1_000_000 + 1, 1_000))
            let waiting = ledger.collected.isEmpty
            if waiting { lingerEnds = UInt64.max }
            let timeout = waiting ? remaining : (now >= lingerEnds ? 0 : min(remaining, 20))
            guard let message = try consumer.poll(timeoutMilliseconds: timeout) else {
                if !ledger.collected.isEmpty { break }
                continue
            }
            if ledger.accept(message), lingerEnds == UInt64.max {
                lingerEnds = DispatchTime.now().uptimeNanoseconds + UInt64(linger) * 1_000_000
            }
        }
        return ledger.takeBatch()
    }

    /// After a retriable error: every assigned partition restarts from PostgreSQL's offsets once
    /// `backoff` has passed; meanwhile the consumer keeps polling (paused) so the group session
    /// stays alive. The next backoff doubles, up to `configuration.retryMaxMilliseconds`.
    func holdOff(
        _ consumer: KafkaConsumer, after error: any Error, backoff: inout Int, configuration: IngestConfiguration,
        stop: StopSignal, logger: Logger
    ) {
        logger.warning(
            "infrastructure error; pausing and retrying", metadata: ["error": "\(error)", "retry_in_ms": "\(backoff)"])
        ledger.requireRewind()
        let assigned = ledger.assigned
        if !assigned.isEmpty { try? consumer.pause(assigned) }
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(backoff) * 1_000_000
        while DispatchTime.now().uptimeNanoseconds < deadline, !stop.isSet {
            _ = try? consumer.poll(timeoutMilliseconds: 100)
        }
        backoff = min(backoff * 2, configuration.retryMaxMilliseconds)
    }

    /// The rebalance callbacks. An assigned partition starts from the offset PostgreSQL holds
    /// for it (`stored` reads them); when that can't be read, it is held paused until a rewind.
    /// A revoked one leaves the ledger after `beforeRevoke` (which lets writes in flight commit
    /// before another member takes the partition over).
    func rebalanceHandler(
        logger: Logger, stored: @escaping @Sendable ([String]) throws -> [String: [Int32: Int64]],
        beforeRevoke: @escaping @Sendable () -> Void = {}
    ) -> KafkaRebalanceHandler {
        KafkaRebalanceHandler(
            assigned: { partitions in
                self.ledger.assigned(partitions)
                logger.info("partitions assigned", metadata: ["partitions": "\(partitions.sorted())"])
                do {
                    return self.started(partitions, stored: try stored(Array(Set(partitions.map(\.topic)))))
                } catch {
                    logger.warning(
                        "stored offsets unavailable; partitions held until PostgreSQL answers",
                        metadata: ["error": "\(error)"])
                    self.ledger.requireRewind()
                    return nil
                }
            },
            revoked: { partitions in
                beforeRevoke()
                let dropped = self.ledger.revoked(partitions)
                logger.info(
                    "partitions revoked",
                    metadata: ["partitions": "\(partitions.sorted())", "dropped_unwritten": "\(dropped)"])
            })
    }

    /// Where `partitions` start: the offsets stored for them (`stored`, by topic and partition;
    /// nil where there is no row yet), through the ledger.
    func started(_ partitions: [KafkaTopicPartition], stored: [String: [Int32: Int64]])
        -> [KafkaTopicPartitionOffset]
    {
        var result: [KafkaTopicPartition: Int64?] = [:]
        for tp in partitions { result[tp] = .some(stored[tp.topic]?[tp.partition]) }
        return ledger.started(result)
    }
}

/// Opens a store, retrying with backoff while PostgreSQL can't be reached; nil once stopped.
func connectRetrying<Store>(
    configuration: IngestConfiguration, stop: StopSignal, logger: Logger, _ open: () throws -> Store
) throws -> Store? {
    var backoff = configuration.retryInitialMilliseconds
    while true {
        do {
            return try open()
        } catch let error as PostgresError where error.code == .connection && !stop.isSet {
            logger.warning(
                "PostgreSQL unavailable; retrying", metadata: ["error": "\(error)", "retry_in_ms": "\(backoff)"])
            let until = DispatchTime.now() + .milliseconds(backoff)
            while DispatchTime.now() < until, !stop.isSet { Thread.sleep(forTimeInterval: 0.05) }
            backoff = min(backoff * 2, configuration.retryMaxMilliseconds)
        }
        if stop.isSet { return nil }
    }
}

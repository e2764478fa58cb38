import BTETestSupport
import Foundation
import Kafka
import Synchronization
import Testing

@Suite(.serialized) struct RebalanceTests {
    /// Two `bte ingest` members of one group under a steady trickle, the second joining and
    /// leaving (SIGTERM) again and again: every rebalance moves partitions mid-batch, and every
    /// produced event is stored exactly once, with the stored offsets at the end of each partition.
    /// Batches wait up to 8 s to fill (and linger as long), so a revoke and the re-assignment land
    /// inside one batch.
    @Test func membersJoiningAndLeavingStoreEveryEventOnce() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let topics = try TestTopics(partitions: 3)
        let group = TestEnvironment.uniqueName("churn-")
        let arguments = [
            "ingest", "--brokers", topics.brokers, "--database-url", db.ingestURL, "--topic-prefix", topics.prefix,
            "--group", group, "--batch-size", "5000", "--batch-wait-ms", "8000", "--linger-ms", "8000",
            "--session-timeout-ms", "6000",
        ]
        let env = ["BTE_LOG_LEVEL": "info"]

        // The trickle: one interaction event every 10 ms from another thread, users spread
        // over the partitions.
        let produced = Atomic<Int>(0)
        let stopProducing = Atomic<Bool>(false)
        let producerDone = DispatchSemaphore(value: 0)
        let brokers = topics.brokers, topic = topics.prefix + "bte.interaction-events.v1"
        Thread.detachNewThread {
            defer { producerDone.signal() }
            guard
                let producer = try? KafkaProducer(
                    configuration: KafkaProducerConfiguration(client: KafkaClientConfiguration(brokers: brokers)))
            else { return }
            var n = 0
            while !stopProducing.load(ordering: .acquiring) {
                n += 1
                let user = "user-\(n % 17)"
                let value = """
                    {"event_id":"\(fixtureUUID(n, prefix: "77777777"))","timestamp":"2026-03-01T10:00:00Z",\
                    "event_type":"tap","user_id":"\(user)","session_id":"s"}
                    """
                guard
                    (try? producer.send([
                        KafkaOutgoingMessage(topic: topic, key: Array(user.utf8), value: Array(value.utf8))
                    ])) != nil
                else { continue }
                produced.store(n, ordering: .releasing)
                Thread.sleep(forTimeInterval: 0.01)
            }
        }

        let first = try BTEProcess(arguments, environment: env)
        defer { if first.process.isRunning { first.signal(SIGKILL) } }
        #expect(eventually(timeout: 60) { first.log.contains("partitions assigned") }, "\(first.log)")
        var cycles = 0
        for _ in 0..<3 {
            let assignmentsBefore = first.log.components(separatedBy: "partitions assigned").count
            let second = try BTEProcess(arguments, environment: env)
            defer { if second.process.isRunning { second.signal(SIGKILL) } }
            // Leave only once the group settled with both members (a member leaving in the middle
            // of a rebalance can wedge some brokers' groups).
            #expect(eventually(timeout: 60) { second.log.contains("partitions assigned") }, "\(second.log)")
            #expect(
                eventually(timeout: 60) {
                    first.log.components(separatedBy: "partitions assigned").count > assignmentsBefore
                })
            Thread.sleep(forTimeInterval: 1.5)
            second.signal(SIGTERM)
            #expect(second.wait(timeout: 30) == 0, "\(second.log)")
            let assignmentsAfter = first.log.components(separatedBy: "partitions assigned").count
            #expect(
                eventually(timeout: 60) {
                    first.log.components(separatedBy: "partitions assigned").count > assignmentsAfter
                }, "\(first.log)")
            Thread.sleep(forTimeInterval: 1)
            cycles += 1
        }
        stopProducing.store(true, ordering: .releasing)
        producerDone.wait()
        let total = produced.load(ordering: .acquiring)
        #expect(total > 300)  // at least ~10 s of trickle across the rebalances
        let caughtUp = try eventually(timeout: 60) {
            try db.count("SELECT count(*) FROM core.interaction_events") >= total
        }
        #expect(caughtUp, "stored \((try? db.count("SELECT count(*) FROM core.interaction_events")) ?? -1) of \(total)")
        first.signal(SIGTERM)
        #expect(first.wait(timeout: 30) == 0, "\(first.log)")
        #expect(cycles == 3)

        // Exactly the produced ids, each once, nothing rejected, and each partition's stored
        // offset at its end: the sum of next offsets is the number of messages.
        #expect(try db.count("SELECT count(*) FROM core.interaction_events") == total)
        #expect(try db.count("SELECT count(DISTINCT event_id) FROM core.interaction_events") == total)
        #expect(try db.count("SELECT count(*) FROM bte.rejected_events") == 0)
        #expect(
            try db.count("SELECT coalesce(sum(next_offset), 0) FROM bte.ingest_offsets WHERE topic = '\(topic)'")
                == total)
    }
}

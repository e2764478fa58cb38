import Foundation
import Kafka
import Synchronization

/// Produces what requests accepted, from one thread that owns the producer: the requests waiting
/// when it is free go out together and each is answered once every message of the group is
/// acknowledged (or the group failed: then none of them is reported accepted).
final class EventPublisher: Sendable {
    private struct Job: Sendable {
        let messages: [KafkaOutgoingMessage]
        let continuation: CheckedContinuation<Void, any Error>
    }

    private let jobs = Mutex<[Job]>([])
    private let stopped = Atomic<Bool>(false)
    private let wake = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)

    init(configuration: KafkaProducerConfiguration) throws {
        let producer = ProducerBox(try KafkaProducer(configuration: configuration))
        let thread = Thread { [self] in
            loop(producer.producer)
            done.signal()
        }
        thread.name = "bte.api.producer"
        thread.start()
    }

    /// Returns once the broker acknowledged every message; throws if it did not.
    func publish(_ messages: [KafkaOutgoingMessage]) async throws {
        guard !messages.isEmpty else { return }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            if stopped.load(ordering: .acquiring) {
                continuation.resume(throwing: KafkaError(.produce, "the server is shutting down"))
                return
            }
            jobs.withLock { $0.append(Job(messages: messages, continuation: continuation)) }
            wake.signal()
        }
    }

    /// Answers what is queued, then stops the thread.
    func shutdown() {
        stopped.store(true, ordering: .releasing)
        wake.signal()
        done.wait()
    }

    private func loop(_ producer: KafkaProducer) {
        while true {
            wake.wait()
            let batch = jobs.withLock { jobs -> [Job] in
                defer { jobs.removeAll() }
                return jobs
            }
            if !batch.isEmpty {
                do {
                    try producer.send(batch.flatMap(\.messages))
                    for job in batch { job.continuation.resume() }
                } catch {
                    for job in batch { job.continuation.resume(throwing: error) }
                }
            }
            if stopped.load(ordering: .acquiring), jobs.withLock({ $0.isEmpty }) { return }
        }
    }
}

/// The producer, handed to its thread once.
private final class ProducerBox: @unchecked Sendable {
    let producer: KafkaProducer
    init(_ producer: KafkaProducer) { self.producer = producer }
}

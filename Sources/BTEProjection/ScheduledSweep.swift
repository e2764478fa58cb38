import BTEDomain
import BTEWorker
import Dispatch
import Foundation
import Logging
import Metrics

/// `bte sweep --every 15m`: a sweep at every tick of a fixed schedule. Ticks are multiples of
/// the interval since the Unix epoch (UTC), and each sweep's as_of is its tick, not the moment
/// it ran: a late or repeated run publishes the same bytes, whichever replica ran it.
public struct ScheduledSweep: Sendable {
    public var sweep: Sweep
    public var everyMilliseconds: Int64
    public var readiness: Readiness?
    public var nowMilliseconds: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }

    public init(sweep: Sweep, everyMilliseconds: Int64) {
        self.sweep = sweep
        self.everyMilliseconds = everyMilliseconds
    }

    /// The latest tick at or before `milliseconds`.
    public static func tick(atOrBefore milliseconds: Int64, every: Int64) -> Int64 {
        let quotient = milliseconds / every
        return (milliseconds % every < 0 ? quotient - 1 : quotient) * every
    }

    /// Sweeps the latest tick once (a Kubernetes CronJob runs this on the same schedule).
    @discardableResult
    public func runLatestTick() throws -> (asOf: Timestamp, result: Sweep.Result) {
        let tick = Self.tick(atOrBefore: nowMilliseconds(), every: everyMilliseconds)
        let asOf = Timestamp(microseconds: tick * 1000)
        return (asOf, try measured(asOf: asOf))
    }

    /// Sweeps the latest tick now, then every following tick, until `stop`. A failed sweep is
    /// logged and counted; the next tick tries again.
    public func run(stop: StopSignal) {
        readiness?.register("sweep")
        var next = Self.tick(atOrBefore: nowMilliseconds(), every: everyMilliseconds)
        while !stop.isSet {
            let asOf = Timestamp(microseconds: next * 1000)
            do {
                _ = try measured(asOf: asOf)
                readiness?.set("sweep", ready: true)
            } catch {
                readiness?.set("sweep", ready: false)
                sweep.logger.error("sweep failed", metadata: ["as_of": "\(asOf)", "error": "\(error)"])
            }
            next += everyMilliseconds
            // Skipped ticks (a sweep longer than the interval) are not made up: the next one covers
            // the same window as of a later instant.
            let now = nowMilliseconds()
            if next <= now { next = Self.tick(atOrBefore: now, every: everyMilliseconds) + everyMilliseconds }
            while !stop.isSet, nowMilliseconds() < next {
                Thread.sleep(forTimeInterval: min(Double(next - nowMilliseconds()) / 1000, 0.2))
            }
        }
    }

    private func measured(asOf: Timestamp) throws -> Sweep.Result {
        let factory = sweep.metrics
        let started = DispatchTime.now().uptimeNanoseconds
        do {
            let result = try sweep.run(asOf: asOf)
            Metrics.Timer(label: "bte_sweep_duration_seconds", factory: factory)
                .recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - started))
            Counter(label: "bte_sweep_runs_total", dimensions: [("outcome", "success")], factory: factory).increment()
            Gauge(label: "bte_sweep_workspaces", factory: factory).record(result.workspaces)
            Gauge(label: "bte_sweep_as_of_timestamp_seconds", factory: factory).record(asOf.seconds)
            Gauge(label: "bte_sweep_last_success_timestamp_seconds", factory: factory)
                .record(Date().timeIntervalSince1970)
            for (topic, count) in result.outputs.countsByTopic() {
                Counter(label: "bte_sweep_outputs_total", dimensions: [("topic", topic)], factory: factory)
                    .increment(by: count)
            }
            return result
        } catch {
            Counter(label: "bte_sweep_runs_total", dimensions: [("outcome", "failure")], factory: factory).increment()
            throw error
        }
    }
}

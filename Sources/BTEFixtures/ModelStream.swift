import BTEDomain
import Foundation
import Kafka

/// One workspace's days of activity for the KPI models, from known rules: `newUsers` users
/// first seen each day, each returning t days later with probability
/// R(t) = R∞ + (R0 − R∞)·e^(−t/RC); every active day a user action (and, for one day in three,
/// an interaction event with a duration); orders with amounts; control changes and an
/// incident. It keeps what it emitted so tests can compute every KPI by hand.
public struct ModelStream: Sendable {
    public struct Options: Sendable {
        public var seed: UInt64 = 1
        public var workspace = "5e0c1d2a-3b4c-4d5e-8f60-718293a4b5c6"
        /// Days since 1970-01-01: the first and last day of activity.
        public var firstDay = 20_000
        public var days = 90
        public var newUsers = 20
        public var r0 = 0.6
        public var rInfinity = 0.25
        public var rc = 12.0
        public var topicPrefix = ""
        public init() {}
    }

    public var messages: [KafkaOutgoingMessage] = []
    /// (user, day) pairs with activity, and each user's first day.
    public var active: Set<Pair> = []
    public var firstSeen: [String: Int] = [:]
    /// Each day's interaction durations (ms) and order amounts (USD).
    public var durations: [Int: [Int]] = [:]
    public var revenue: [Int: Double] = [:]
    /// The users with an interaction on each device type.
    public var deviceUsers: [String: Set<String>] = [:]
    /// (microseconds, rollout_pct) of the control changes.
    public var rollouts: [(Int64, Double)] = []

    public struct Pair: Hashable, Sendable {
        public let user: String
        public let day: Int
        public init(user: String, day: Int) {
            self.user = user
            self.day = day
        }
    }

    public init(options o: Options) {
        var rng = SplitMix64(seed: o.seed)
        let business = o.topicPrefix + "bte.business-events.v1"
        let interactions = o.topicPrefix + "bte.interaction-events.v1"
        let subVertical = "5e0c1d2a-3b4c-4d5e-8f60-000000000001"
        let dayMicros: Int64 = 86_400_000_000
        func time(_ day: Int, _ second: Int) -> String {
            Timestamp(microseconds: Int64(day) * dayMicros + Int64(second) * 1_000_000).rfc3339
        }
        func q(_ s: String) -> String { JSONValue.quoted(s) }
        var users: [(id: String, first: Int)] = []
        for offset in 0..<o.days {
            let day = o.firstDay + offset
            for _ in 0..<o.newUsers { users.append((rng.uuid(), day)) }
            var second = 0
            for user in users where user.first <= day {
                let t = Double(day - user.first)
                let p = t == 0 ? 1 : o.rInfinity + (o.r0 - o.rInfinity) * exp(-t / o.rc)
                guard t == 0 || rng.unit() < p else { continue }
                second += 1
                active.insert(Pair(user: user.id, day: day))
                if firstSeen[user.id] == nil { firstSeen[user.id] = day }
                messages.append(
                    KafkaOutgoingMessage(
                        topic: business, key: Array(o.workspace.utf8),
                        value: Array(
                            """
                            {"record_type":"user_action","action_id":\(q(rng.uuid())),"action_type":"note.added",\
                            "workspace_id":\(q(o.workspace)),"actor_user_id":\(q(user.id)),\
                            "timestamp":\(q(time(day, second)))}
                            """.utf8)))
                if rng.next(3) == 0 {
                    let duration = 60 + rng.next(180)
                    let device = rng.next(4) == 0 ? "ios" : "web"
                    durations[day, default: []].append(duration)
                    deviceUsers[device, default: []].insert(user.id)
                    messages.append(
                        KafkaOutgoingMessage(
                            topic: interactions, key: Array(user.id.utf8),
                            value: Array(
                                """
                                {"event_id":\(q(rng.uuid())),"timestamp":\(q(time(day, second))),"event_type":"tap",\
                                "user_id":\(q(user.id)),"session_id":"s","duration_ms":\(duration),\
                                "device_type":\(q(device)),\
                                "workspace_id":\(q(o.workspace))}
                                """.utf8)))
                }
            }
            for order in 0..<(3 + rng.next(3)) {
                let amount = Double(20 + rng.next(200)) + 0.5
                revenue[day, default: 0] += amount
                let buyer = users[rng.next(users.count)].id
                // Buyers are users already seen: an order makes its day an active one.
                active.insert(Pair(user: buyer, day: day))
                messages.append(
                    KafkaOutgoingMessage(
                        topic: business, key: Array(o.workspace.utf8),
                        value: Array(
                            """
                            {"record_type":"business_event","event_id":\(q(rng.uuid())),"event_type":"order.created",\
                            "entity_type":"order","entity_id":\(q(rng.uuid())),"workspace_id":\(q(o.workspace)),\
                            "sub_vertical_id":\(q(subVertical)),"actor_user_id":\(q(buyer)),\
                            "timestamp":\(q(time(day, 50_000 + order))),"metadata":{"amount":\(amount)}}
                            """.utf8)))
            }
            if offset % 30 == 10 {
                let rollout = Double(offset / 30 + 1) * 0.25
                rollouts.append((Int64(day) * dayMicros + 3_600_000_000, rollout))
                messages.append(
                    KafkaOutgoingMessage(
                        topic: business, key: Array(o.workspace.utf8),
                        value: Array(
                            """
                            {"record_type":"business_event","event_id":\(q(rng.uuid())),"event_type":"control.changed",\
                            "entity_type":"control","entity_id":"5e0c1d2a-3b4c-4d5e-8f60-000000000002",\
                            "workspace_id":\(q(o.workspace)),"sub_vertical_id":\(q(subVertical)),\
                            "actor_user_id":"5e0c1d2a-3b4c-4d5e-8f60-000000000003","timestamp":\(q(time(day, 3_600))),\
                            "metadata":{"rollout_pct":\(rollout),"promo_voltage":0.5}}
                            """.utf8)))
            }
        }
    }
}

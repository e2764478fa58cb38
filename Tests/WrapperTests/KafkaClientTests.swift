import BTETestSupport
import Foundation
import Kafka
import Testing

@Suite(.serialized) struct KafkaClientTests {
    @Test func badConfigurationIsATypedError() {
        let error = #expect(throws: KafkaError.self) {
            _ = try KafkaProducer(
                configuration: KafkaProducerConfiguration(
                    client: KafkaClientConfiguration(brokers: "127.0.0.1:1", properties: ["no.such.property": "1"])))
        }
        #expect(error?.code == .configuration)
        #expect(error?.isRetriable == false)
        #expect(error?.message.contains("no.such.property") == true)
    }

    @Test func createTopicsIsIdempotent() throws {
        let admin = try KafkaAdmin(configuration: KafkaClientConfiguration(brokers: try TestEnvironment.brokers()))
        let name = TestEnvironment.uniqueName("admin-")
        let topic = KafkaNewTopic(
            name: name, partitions: 2, replicationFactor: 1, configs: ["cleanup.policy": "compact"])
        #expect(try admin.createTopics([topic]) == [name: .created])
        #expect(try admin.createTopics([topic]) == [name: .alreadyExisted])
        #expect(try admin.topicPartitionCounts()[name] == 2)
    }

    @Test func producedMessagesComeBackExactly() throws {
        let topics = try TestTopics(partitions: 1)
        let topic = topics.prefix + "bte.interaction-events.v1"
        let sent: [KafkaOutgoingMessage] = [
            KafkaOutgoingMessage(topic: topic, key: Array("k1".utf8), value: Array("v1".utf8)),
            KafkaOutgoingMessage(topic: topic, key: nil, value: Array("no key".utf8)),
            KafkaOutgoingMessage(topic: topic, key: [], value: []),
            KafkaOutgoingMessage(topic: topic, key: Array("k4".utf8), value: nil),
            KafkaOutgoingMessage(topic: topic, key: Array("k5".utf8), value: [0, 255, 10]),
        ]
        try topics.produce(sent)
        let received = try topics.readAll(topic, partitions: 1)
        #expect(received.map(\.offset) == [0, 1, 2, 3, 4])
        #expect(received.map(\.key) == [Array("k1".utf8), nil, [], Array("k4".utf8), Array("k5".utf8)])
        #expect(received.map(\.value) == [Array("v1".utf8), Array("no key".utf8), [], nil, [0, 255, 10]])
    }

    @Test func assignStartsAtTheGivenOffsetAndWatermarksAreExact() throws {
        let topics = try TestTopics(partitions: 1)
        let topic = topics.prefix + "bte.business-events.v1"
        try topics.produce(
            (0..<10).map { KafkaOutgoingMessage(topic: topic, key: nil, value: Array("m\($0)".utf8), partition: 0) })
        var config = KafkaConsumerConfiguration(
            client: KafkaClientConfiguration(brokers: topics.brokers), groupID: TestEnvironment.uniqueName("g-"))
        config.sessionTimeoutMilliseconds = 6_000
        let consumer = try KafkaConsumer(
            configuration: config, rebalance: KafkaRebalanceHandler(assigned: { _ in nil }, revoked: { _ in }))
        let tp = KafkaTopicPartition(topic: topic, partition: 0)
        #expect(try consumer.watermarks(tp, timeoutMilliseconds: 10_000).low == 0)
        try consumer.assign([KafkaTopicPartitionOffset(tp, offset: .exactly(7))])
        var values: [String] = []
        let deadline = Date().addingTimeInterval(20)
        while values.count < 3, Date() < deadline {
            if let message = try consumer.poll(timeoutMilliseconds: 200) {
                values.append(String(decoding: message.value ?? [], as: UTF8.self))
            }
        }
        #expect(values == ["m7", "m8", "m9"])
        #expect(consumer.cachedWatermarks(tp)?.high == 10)
        // Seek moves an assigned partition back.
        try consumer.seek([KafkaTopicPartitionOffset(tp, offset: .exactly(2))])
        var afterSeek: KafkaMessage?
        let seekDeadline = Date().addingTimeInterval(20)
        while afterSeek == nil, Date() < seekDeadline { afterSeek = try consumer.poll(timeoutMilliseconds: 200) }
        #expect(afterSeek?.offset == 2)
        #expect(afterSeek.map { String(decoding: $0.value ?? [], as: UTF8.self) } == "m2")
        // Paused partitions deliver nothing; resumed ones continue.
        try consumer.assign([KafkaTopicPartitionOffset(tp, offset: .exactly(0))])
        try consumer.pause([tp])
        var whilePaused = 0
        for _ in 0..<10 { if try consumer.poll(timeoutMilliseconds: 100) != nil { whilePaused += 1 } }
        #expect(whilePaused == 0)
        try consumer.resume([tp])
        var first: KafkaMessage?
        let resumeDeadline = Date().addingTimeInterval(20)
        while first == nil, Date() < resumeDeadline { first = try consumer.poll(timeoutMilliseconds: 200) }
        #expect(first?.offset == 0)
    }
}

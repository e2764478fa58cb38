import CRdKafka

/// A topic to create.
public struct KafkaNewTopic: Sendable {
    public let name: String
    public let partitions: Int32
    public let replicationFactor: Int32
    public let configs: [String: String]

    public init(name: String, partitions: Int32, replicationFactor: Int32, configs: [String: String] = [:]) {
        self.name = name
        self.partitions = partitions
        self.replicationFactor = replicationFactor
        self.configs = configs
    }
}

/// What happened to one topic of a create request.
public enum KafkaTopicCreation: Equatable, Sendable {
    case created
    case alreadyExisted
}

/// Topic administration.
public final class KafkaAdmin {
    private let handle: OpaquePointer

    public init(configuration: KafkaClientConfiguration) throws {
        let conf = try makeConf(configuration.librdkafkaProperties(base: []))
        handle = try makeClient(type: RD_KAFKA_PRODUCER, conf: conf)
    }

    deinit { rd_kafka_destroy(handle) }

    /// Creates the topics that don't exist yet; existing ones are left as they are.
    public func createTopics(_ topics: [KafkaNewTopic], timeoutMilliseconds: Int32 = 15_000) throws -> [String:
        KafkaTopicCreation]
    {
        var errstr = [CChar](repeating: 0, count: 512)
        var newTopics: [OpaquePointer?] = []
        defer { for topic in newTopics { rd_kafka_NewTopic_destroy(topic) } }
        for topic in topics {
            guard
                let created = rd_kafka_NewTopic_new(
                    topic.name, topic.partitions, topic.replicationFactor, &errstr, errstr.count)
            else {
                throw KafkaError(.admin, "topic \(topic.name): \(cString(errstr))")
            }
            newTopics.append(created)
            for key in topic.configs.keys.sorted() {
                let err = rd_kafka_NewTopic_set_config(created, key, topic.configs[key] ?? "")
                guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                    throw KafkaError(.admin, err, context: "topic \(topic.name) config \(key)")
                }
            }
        }
        guard let queue = rd_kafka_queue_new(handle) else {
            throw KafkaError(.admin, "rd_kafka_queue_new returned NULL")
        }
        defer { rd_kafka_queue_destroy(queue) }
        let options = rd_kafka_AdminOptions_new(handle, RD_KAFKA_ADMIN_OP_CREATETOPICS)
        defer { rd_kafka_AdminOptions_destroy(options) }
        rd_kafka_AdminOptions_set_request_timeout(options, Int32(timeoutMilliseconds), &errstr, errstr.count)
        rd_kafka_AdminOptions_set_operation_timeout(options, Int32(timeoutMilliseconds), &errstr, errstr.count)
        newTopics.withUnsafeMutableBufferPointer { buffer in
            rd_kafka_CreateTopics(handle, buffer.baseAddress, buffer.count, options, queue)
        }
        guard let event = rd_kafka_queue_poll(queue, timeoutMilliseconds + 5_000) else {
            throw KafkaError(.timedOut, "CreateTopics got no answer within \(timeoutMilliseconds) ms")
        }
        defer { rd_kafka_event_destroy(event) }
        let eventError = rd_kafka_event_error(event)
        guard eventError == RD_KAFKA_RESP_ERR_NO_ERROR else {
            let text = rd_kafka_event_error_string(event).map { String(cString: $0) } ?? ""
            throw KafkaError(.admin, eventError, context: "CreateTopics \(text)")
        }
        guard let result = rd_kafka_event_CreateTopics_result(event) else {
            throw KafkaError(.admin, "CreateTopics returned no result")
        }
        var count = 0
        guard let results = rd_kafka_CreateTopics_result_topics(result, &count) else { return [:] }
        var outcome: [String: KafkaTopicCreation] = [:]
        for index in 0..<count {
            guard let topicResult = results[index] else { continue }
            let name = String(cString: rd_kafka_topic_result_name(topicResult))
            let err = rd_kafka_topic_result_error(topicResult)
            if err == RD_KAFKA_RESP_ERR_NO_ERROR {
                outcome[name] = .created
            } else if err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS {
                outcome[name] = .alreadyExisted
            } else {
                let text = rd_kafka_topic_result_error_string(topicResult).map { String(cString: $0) } ?? ""
                throw KafkaError(.admin, err, context: "create \(name) \(text)")
            }
        }
        return outcome
    }

    /// Partition counts of the topics the cluster knows.
    public func topicPartitionCounts(timeoutMilliseconds: Int32 = 10_000) throws -> [String: Int] {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(handle, 1, nil, &metadata, timeoutMilliseconds)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            throw KafkaError(.metadata, err, context: "metadata")
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        var counts: [String: Int] = [:]
        for index in 0..<Int(metadata.pointee.topic_cnt) {
            let topic = metadata.pointee.topics[index]
            guard topic.err == RD_KAFKA_RESP_ERR_NO_ERROR, let name = topic.topic else { continue }
            counts[String(cString: name)] = Int(topic.partition_cnt)
        }
        return counts
    }

    /// The group's state (`Empty`, `Stable`, `PreparingRebalance`, …) and how many members it
    /// has now; nil when the cluster doesn't know the group.
    public func group(_ name: String, timeoutMilliseconds: Int32 = 10_000) throws -> KafkaGroupState? {
        var list: UnsafePointer<rd_kafka_group_list>?
        let err = rd_kafka_list_groups(handle, name, &list, timeoutMilliseconds)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let list else {
            throw KafkaError(.admin, err, context: "describe group \(name)")
        }
        defer { rd_kafka_group_list_destroy(list) }
        for index in 0..<Int(list.pointee.group_cnt) {
            let info = list.pointee.groups[index]
            guard info.group.map({ String(cString: $0) }) == name else { continue }
            if info.err == RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND { return nil }
            guard info.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError(.admin, info.err, context: "describe group \(name)")
            }
            let state = info.state.map { String(cString: $0) } ?? ""
            if state == "Dead" { return nil }
            return KafkaGroupState(state: state, members: Int(info.member_cnt))
        }
        return nil
    }
}

/// A consumer group as the coordinator describes it.
public struct KafkaGroupState: Sendable, Equatable {
    public var state: String
    public var members: Int
}

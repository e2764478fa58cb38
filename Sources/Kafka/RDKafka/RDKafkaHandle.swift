import CRdKafka

/// Builds a `rd_kafka_conf_t` from properties; the caller owns the result until it hands it to
/// `rd_kafka_new`. On any failure the partial configuration is freed here.
func makeConf(_ properties: [(String, String)]) throws -> OpaquePointer {
    guard let conf = rd_kafka_conf_new() else {
        throw KafkaError(.configuration, "rd_kafka_conf_new returned NULL")
    }
    var errstr = [CChar](repeating: 0, count: 512)
    for (key, value) in properties {
        let result = rd_kafka_conf_set(conf, key, value, &errstr, errstr.count)
        if result != RD_KAFKA_CONF_OK {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(.configuration, configurationMessage(key: key, value: value, detail: cString(errstr)))
        }
    }
    return conf
}

/// Whether a property holds a secret (passwords, keys, JAAS and OAuth configuration).
func isSecretProperty(_ key: String) -> Bool {
    let key = key.lowercased()
    return ["password", "secret", "jaas", "key.pem", "oauthbearer.config", "token"].contains { key.contains($0) }
}

/// One line for a refused property; a secret's value appears nowhere in it (librdkafka's own
/// text quotes the value).
func configurationMessage(key: String, value: String, detail: String) -> String {
    guard isSecretProperty(key) else { return "\(key)=\(value): \(detail)" }
    let scrubbed = value.isEmpty ? detail : detail.replacing(value, with: "***")
    return "\(key)=***: \(scrubbed)"
}

/// Creates a client from a configuration; the configuration is consumed either way.
func makeClient(type: rd_kafka_type_t, conf: OpaquePointer) throws -> OpaquePointer {
    var errstr = [CChar](repeating: 0, count: 512)
    guard let handle = rd_kafka_new(type, conf, &errstr, errstr.count) else {
        rd_kafka_conf_destroy(conf)
        let text = cString(errstr)
        throw KafkaError(.clientCreation, text)
    }
    return handle
}

/// A `rd_kafka_topic_partition_list_t` owned for the scope of `body`.
func withPartitionList<R>(
    _ entries: [(KafkaTopicPartition, Int64?)],
    _ body: (UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) throws -> R
) throws -> R {
    guard let list = rd_kafka_topic_partition_list_new(Int32(max(entries.count, 1))) else {
        throw KafkaError(.assignment, "rd_kafka_topic_partition_list_new returned NULL")
    }
    defer { rd_kafka_topic_partition_list_destroy(list) }
    for (tp, offset) in entries {
        guard let element = rd_kafka_topic_partition_list_add(list, tp.topic, tp.partition) else {
            throw KafkaError(.assignment, "could not add \(tp) to a partition list")
        }
        if let offset { element.pointee.offset = offset }
    }
    return try body(list)
}

/// Copies a C partition list into Swift values.
func partitions(of list: UnsafePointer<rd_kafka_topic_partition_list_t>?) -> [KafkaTopicPartition] {
    guard let list, let elems = list.pointee.elems else { return [] }
    return (0..<Int(list.pointee.cnt)).map { index in
        let element = elems[index]
        return KafkaTopicPartition(topic: element.topic.map { String(cString: $0) } ?? "", partition: element.partition)
    }
}

extension KafkaOffset {
    var rawValue: Int64 {
        switch self {
        case .beginning: return Int64(RD_KAFKA_OFFSET_BEGINNING)
        case .end: return Int64(RD_KAFKA_OFFSET_END)
        case .committed: return Int64(RD_KAFKA_OFFSET_STORED)
        case .exactly(let offset): return offset
        }
    }
}

func copyBytes(_ pointer: UnsafeMutableRawPointer?, _ length: Int) -> [UInt8]? {
    guard let pointer else { return nil }
    return Array(UnsafeRawBufferPointer(start: pointer, count: length))
}

func cString(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

#include <librdkafka/rdkafka.h>

/* rd_kafka_producev is variadic, which Swift can't call: one fixed-argument form that produces
   a copied message with optional headers. On success librdkafka owns `headers`. */
static inline rd_kafka_resp_err_t bte_produce(rd_kafka_t *rk, const char *topic, int32_t partition, void *payload,
                                              size_t len, const void *key, size_t keylen,
                                              rd_kafka_headers_t *headers) {
    if (headers) {
        return rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(payload, len),
                                 RD_KAFKA_V_KEY(key, keylen), RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_END);
    }
    return rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(payload, len),
                             RD_KAFKA_V_KEY(key, keylen), RD_KAFKA_V_END);
}

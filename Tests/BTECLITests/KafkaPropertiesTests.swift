import BTECLI
import Testing

struct KafkaPropertiesTests {
    @Test func environmentNamesBecomeLibrdkafkaProperties() throws {
        let properties = try KafkaProperties.resolve(
            flags: [],
            environment: [
                "BTE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "BTE_KAFKA_SASL_MECHANISMS": "SCRAM-SHA-512",
                "BTE_KAFKA_SSL_CA_LOCATION": "/etc/ca.pem", "PATH": "/bin", "BTE_DATABASE_URL": "postgresql://x",
            ])
        #expect(
            properties == [
                "security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512", "ssl.ca.location": "/etc/ca.pem",
            ])
    }

    @Test func bteOwnSettingsAreNotProperties() throws {
        let properties = try KafkaProperties.resolve(
            flags: [],
            environment: [
                "BTE_KAFKA_BROKERS": "a:9092", "BTE_KAFKA_SESSION_TIMEOUT_MS": "6000", "BTE_KAFKA_PORT": "59092",
            ])
        #expect(properties.isEmpty)
    }

    @Test func flagsWinAndKeepEverythingAfterTheFirstEquals() throws {
        let properties = try KafkaProperties.resolve(
            flags: ["sasl.mechanisms=PLAIN", "sasl.password=a=b=c"],
            environment: ["BTE_KAFKA_SASL_MECHANISMS": "GSSAPI"])
        #expect(properties == ["sasl.mechanisms": "PLAIN", "sasl.password": "a=b=c"])
    }

    @Test func aFlagWithoutKeyOrEqualsIsAUsageErrorThatQuotesNothing() {
        for flag in ["secret-zz9", "=secret-zz9"] {
            #expect(throws: CLIError.self) { try KafkaProperties.resolve(flags: [flag], environment: [:]) }
            do {
                _ = try KafkaProperties.resolve(flags: [flag], environment: [:])
            } catch {
                #expect(!"\(error)".contains("zz9"), "\(error)")
            }
        }
    }
}

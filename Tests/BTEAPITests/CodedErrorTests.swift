import BTEDomain
import BTEModels
import BTEOperations
import BTEStore
import Testing

/// The errors of the store, the operations and the models share one shape: a code scripts
/// match and one line for people.
struct CodedErrorTests {
    @Test func everyCodedErrorIsOneLineCodeThenMessage() {
        let errors: [any CodedError] = [
            StoreError(.invalidPrivacyRequest, "a privacy request names at least one user"),
            OperationsError(.unknownTopic, "no topic t"), ModelError(.invalidInput, "horizon must be positive"),
        ]
        #expect(
            errors.map(\.description) == [
                "store_invalid_privacy_request: a privacy request names at least one user",
                "replay_unknown_topic: no topic t", "model_invalid_input: horizon must be positive",
            ])
    }
}

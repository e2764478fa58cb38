import BTEDomain
import Foundation
import PropertyBased
import Testing

/// Summed metadata numbers: any JSON number is accepted exactly when it is finite and within
/// its bound, whatever its spelling.
struct MoneyPropertyTests {
    @Test func amountsAreAcceptedExactlyWithinTheirBound() async {
        let mantissa = Gen.int64(in: -9_999_999...9_999_999)
        let exponent = Gen.int(in: -400...400)
        await propertyCheck(count: 2_000, input: mantissa, exponent) { mantissa, exponent in
            let text = "\(mantissa)e\(exponent)"
            // Double's own reading of the same text is the reference; a 1e400 is +inf.
            let value = Double(text) ?? .nan
            let amount = BusinessVocabularyTests.code(
                BusinessVocabularyTests.event("order.created", entity: "order", metadata: #"{"amount":\#(text)}"#))
            #expect(amount == (value.isFinite && value >= 0 && value <= 1e12 ? nil : "invalid_value"), "\(text)")
            let realized = BusinessVocabularyTests.code(
                BusinessVocabularyTests.event(
                    "recommendation.acted", entity: "recommendation", metadata: #"{"realized_value":\#(text)}"#))
            #expect(realized == (value.isFinite && abs(value) <= 1e12 ? nil : "invalid_value"), "\(text)")
        }
    }

    @Test func plainDecimalsRoundTrip() async {
        await propertyCheck(count: 2_000, input: Gen<Double>.value(in: -2e12...2e12)) { value in
            let code = BusinessVocabularyTests.code(
                BusinessVocabularyTests.event("deal.won", entity: "deal", metadata: #"{"amount":\#(value)}"#))
            #expect(code == (value >= 0 && value <= 1e12 ? nil : "invalid_value"), "\(value)")
        }
    }
}

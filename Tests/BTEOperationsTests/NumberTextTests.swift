import BTEDomain
import BTEOperations
import PropertyBased
import Testing

struct NumberTextTests {
    @Test func wholeNumbersOrADash() {
        #expect(NumberText.whole(.number("12")) == "12")
        #expect(NumberText.whole(.number("1.2e1")) == "12")
        #expect(NumberText.whole(.number("12.5")) == "-")
        // 1e400 reads as infinity and 1e19 is past Int.max (≈ 9.22e18): both used to trap.
        #expect(NumberText.whole(.number("1e400")) == "-")
        #expect(NumberText.whole(.number("1e19")) == "-")
        #expect(NumberText.whole(.string("12")) == "-")
        #expect(NumberText.whole(nil) == "-")
        #expect(NumberText.integer(.number("-3")) == -3)
    }

    @Test func signalValues() {
        #expect(NumberText.signal(90) == "90")
        #expect(NumberText.signal(0.5) == "0.500")
        // 1e19 is whole but past Int64.max: printed with decimals instead of trapping.
        #expect(NumberText.signal(1e19) == "10000000000000000000.000")
        #expect(NumberText.signal(-.infinity) == "-inf")
    }

    @Test func anyNumberTextPrints() async {
        await propertyCheck(count: 2_000, input: Gen.ascii.string(of: 0...30)) { text in
            _ = NumberText.whole(.number(text))
            _ = NumberText.signal(Double(text) ?? 0)
        }
        await propertyCheck(count: 2_000, input: Gen<Double>.value(in: -1e300...1e300)) { value in
            let text = NumberText.signal(value)
            #expect(text.contains(".") == (Int64(exactly: value) == nil), "\(value)")
        }
    }
}

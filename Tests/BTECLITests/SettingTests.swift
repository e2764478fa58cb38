import BTECLI
import Foundation
import Testing

struct SettingTests {
    @Test func integersFromTheEnvironmentAreCheckedNotDefaulted() throws {
        let variable = "BTE_TEST_SETTING_INTEGER"
        defer { unsetenv(variable) }
        unsetenv(variable)
        #expect(try Setting.integer(nil, variable: variable, default: 7) == 7)
        #expect(try Setting.integer(3, variable: variable, default: 7) == 3)
        setenv(variable, "45000", 1)
        #expect(try Setting.integer(nil, variable: variable, default: 7) == 45_000)
        // The flag wins over the variable.
        #expect(try Setting.integer(3, variable: variable, default: 7) == 3)
        // Beyond Int (2^63 − 1 = 9,223,372,036,854,775,807) or not a number: a usage error.
        for bad in ["9223372036854775808", "99999999999999999999", "45s", "1e3", " 5"] {
            setenv(variable, bad, 1)
            #expect(throws: CLIError.self, "\(bad)") { try Setting.integer(nil, variable: variable, default: 7) }
        }
        setenv(variable, "", 1)
        #expect(try Setting.integer(nil, variable: variable, default: 7) == 7)
    }
}

import Testing

@testable import BTEAPI

@Suite struct WorkerLoadTests {
    /// Two workers: the first job goes to 0, the second to 1; when 1 is done and 0 still busy
    /// (a long fit), the next job goes to 1, not back to 0 in turn.
    @Test func aJobGoesToTheLeastBusyWorker() {
        let load = WorkerLoad(workers: 2)
        #expect(load.take() == 0)
        #expect(load.take() == 1)
        load.release(1)
        #expect(load.take() == 1)
        #expect(load.take() == 0)
        // Loads now [2, 2]: ties go to the first.
        load.release(0)
        load.release(0)
        #expect(load.take() == 0)
    }
}

@Suite struct OutcomeTests {
    /// A waiter gets the reply when it comes within its limit, nil at its limit otherwise; once
    /// known, the reply is immediate for everyone.
    @Test func waitersGetTheReplyOrNilAtTheirLimit() async {
        let outcome = Outcome()
        #expect(await outcome.wait(.milliseconds(10)) == nil)
        #expect(await outcome.wait(.zero) == nil)
        async let early = outcome.wait(.seconds(60))
        async let late = outcome.wait(.seconds(60))
        try? await Task.sleep(for: .milliseconds(50))
        outcome.finish(ModelService.Reply(status: 201, body: "{}"))
        #expect(await early?.status == 201)
        #expect(await late?.status == 201)
        #expect(await outcome.wait(.zero)?.body == "{}")
    }
}

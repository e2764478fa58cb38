import Hummingbird
import NIOCore
import NIOHTTPTypes
import Synchronization

/// The request context of the API: the core one plus the client's address, which bounds
/// failed authentications per address.
public struct APIRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let clientAddress: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        clientAddress = source.channel.remoteAddress?.ipAddress
    }
}

/// The address of the client whose request is being answered, for code that has no context.
enum ClientAddress {
    @TaskLocal static var current: String?
}

struct ClientAddressMiddleware: RouterMiddleware {
    func handle(
        _ request: Request, context: APIRequestContext,
        next: (Request, APIRequestContext) async throws -> Response
    ) async throws -> Response {
        try await ClientAddress.$current.withValue(context.clientAddress) { try await next(request, context) }
    }
}

/// Open connections across the server: one over the cap is closed as soon as it is accepted.
final class ConnectionGate: Sendable {
    let cap: Int
    private let open = Atomic<Int>(0)

    init(cap: Int) { self.cap = cap }

    var count: Int { open.load(ordering: .relaxed) }

    /// Counts a new connection; false (and not counted) when the cap is reached.
    func enter() -> Bool {
        while true {
            let current = open.load(ordering: .relaxed)
            guard current < cap else { return false }
            if open.compareExchange(expected: current, desired: current + 1, ordering: .relaxed).exchanged {
                return true
            }
        }
    }

    func leave() { open.subtract(1, ordering: .relaxed) }
}

/// Per connection: counts it against the gate, and closes it when a request has not arrived
/// whole (head and body) within `deadline` of the connection opening or the previous response's
/// end. A body sent a byte at a time can't hold a connection, whatever resets the idle timer;
/// a response that lasts (a stream of events) is the server's, and is not cut.
final class RequestDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let gate: ConnectionGate
    private let deadline: TimeAmount
    private var timer: Scheduled<Void>?
    private var counted = false
    /// Requests read whole whose responses have not ended.
    private var answering = 0

    init(gate: ConnectionGate, deadline: TimeAmount) {
        self.gate = gate
        self.deadline = deadline
    }

    func handlerAdded(context: ChannelHandlerContext) {
        guard gate.enter() else {
            context.close(promise: nil)
            return
        }
        counted = true
        arm(context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        if counted {
            counted = false
            gate.leave()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .end = unwrapInboundIn(data) {
            answering += 1
            timer?.cancel()
            timer = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            answering = max(0, answering - 1)
            if answering == 0 { arm(context) }
        }
        context.write(data, promise: promise)
    }

    private func arm(_ context: ChannelHandlerContext) {
        timer?.cancel()
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: deadline) { bound.value.close(promise: nil) }
    }
}

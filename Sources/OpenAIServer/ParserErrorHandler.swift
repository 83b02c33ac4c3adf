// Requests the HTTP parser refuses (headers past the limit, bytes that are not HTTP, conflicting framing)
// never reach a route. Hummingbird would answer them with an empty 400; this handler, placed right after
// the HTTP codec, answers with the same OpenAI error envelope every route uses, then closes the connection.
// It closes gracefully: our side first (the client reads the answer, then our FIN), while what the client
// is still sending (the rest of a 100 KB header) is read and dropped, and fully when the client closes or
// after `lingerSeconds`. Closing at once with unread input would make the kernel send a reset, and the
// client would lose the answer.

import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

final class ParserErrorHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundOut = HTTPResponsePart

    static let lingerSeconds: Int64 = 2
    /// Set once the error is answered: later input, and the decoder's errors about it, are dropped.
    private var answered = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if answered { return }
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if answered { return }
        guard let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        answered = true
        let tooLarge = parserError == .headerOverflow
        let apiError = APIError.invalid(
            tooLarge ? "the request headers are larger than this server accepts; send smaller headers"
                : "the request is not valid HTTP/1.1 (\(parserError)); check its framing",
            code: tooLarge ? "headers_too_large" : "invalid_http")
        let body = ByteBuffer(string: apiError.envelope.serialized)
        var head = HTTPResponse(status: .badRequest)
        head.headerFields[.contentType] = "application/json"
        head.headerFields[.contentLength] = String(body.readableBytes)
        head.headerFields[.connection] = "close"
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            let context = bound.value
            context.close(mode: .output, promise: nil)
            context.eventLoop.scheduleTask(in: .seconds(Self.lingerSeconds)) { bound.value.close(promise: nil) }
        }
    }
}

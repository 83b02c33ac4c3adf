// Requests the HTTP parser refuses (headers past the limit, bytes that are not HTTP, conflicting framing)
// never reach a route. Hummingbird would answer them with an empty 400; this handler, placed right after
// the HTTP codec, answers with the same OpenAI error envelope every route uses, then closes the connection.

import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

final class ParserErrorHandler: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundOut = HTTPResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
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
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }
}

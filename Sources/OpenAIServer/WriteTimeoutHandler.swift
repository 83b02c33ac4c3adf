// A client that stops reading a streamed response must not hold a run slot, KV blocks and memory forever.
// Once NIO's outbound buffer passes its high-water mark (64 KiB) the channel turns unwritable and the
// response's writer waits; if it stays unwritable for `timeout`, this handler closes the connection. The
// pending write then fails, the response's task ends and its engine request is aborted (blocks freed,
// usage recorded with the tokens computed so far). Until then the server holds at most the buffer, the
// kernel's send buffer (autotuned up to net.ipv4.tcp_wmem's maximum, 4 MiB on Debian, or fixed by
// `--socket-send-buffer`) and the tokens the engine made meanwhile.

import NIOCore
import NIOHTTPTypes

final class WriteTimeoutHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    private let timeout: TimeAmount
    private let sendBufferBytes: Int?
    private var closing: Scheduled<Void>?

    init(timeout: TimeAmount, sendBufferBytes: Int?) {
        self.timeout = timeout
        self.sendBufferBytes = sendBufferBytes
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if let sendBufferBytes {
            _ = context.channel.setOption(ChannelOptions.socketOption(.so_sndbuf), value: SocketOptionValue(sendBufferBytes))
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            closing?.cancel()
            closing = nil
        } else if closing == nil {
            let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
            closing = context.eventLoop.scheduleTask(in: timeout) {
                let (handler, context) = bound.value
                handler.closing = nil
                if !context.channel.isWritable { context.close(promise: nil) }
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closing?.cancel()
        closing = nil
        context.fireChannelInactive()
    }
}

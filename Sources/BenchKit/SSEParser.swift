// Server-sent events from a streaming completion: bytes arrive in arbitrary pieces (a line, or even a UTF-8
// character, may be split between two reads); complete events come out as their `data` payloads.

/// Incremental SSE parser (WHATWG event-stream rules, the subset completions use): lines end in LF or CRLF,
/// a blank line ends an event, lines starting with ":" are comments, `data:` lines of one event are joined
/// with "\n", other fields (`event:`, `id:`, `retry:`) are ignored.
package struct SSEParser: Sendable {
    private var line: [UInt8] = []
    private var data: [UInt8] = []
    private var hasData = false

    package init() {}

    /// Feeds the next bytes; returns the payloads of the events they completed, in order.
    package mutating func feed<Bytes: Sequence>(_ bytes: Bytes) -> [String] where Bytes.Element == UInt8 {
        var events: [String] = []
        for byte in bytes {
            guard byte == UInt8(ascii: "\n") else {
                line.append(byte)
                continue
            }
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            if line.isEmpty {
                if hasData { events.append(String(decoding: data, as: UTF8.self)) }
                data.removeAll(keepingCapacity: true)
                hasData = false
            } else if line.first != UInt8(ascii: ":") {
                takeField()
            }
            line.removeAll(keepingCapacity: true)
        }
        return events
    }

    private mutating func takeField() {
        let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
        guard line[..<colon].elementsEqual("data".utf8) else { return }
        var value = line[min(colon + 1, line.endIndex)...]
        if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        if hasData { data.append(UInt8(ascii: "\n")) }
        data.append(contentsOf: value)
        hasData = true
    }
}

// Turns generated tokens into text as they arrive, for the server's streaming responses. A byte-level
// token may end inside a UTF-8 character (an emoji is often 4 byte tokens), so the bytes of an
// unfinished character are held back until the tokens that complete it arrive.

import GGUF

package struct StreamingDetokenizer: Sendable {
    private let tokenizer: Tokenizer
    private let renderSpecial: Bool
    private var pending: [UInt8] = []
    private var isFirst = true

    /// `renderSpecial`: write control tokens as their text (e.g. "<|im_end|>") instead of skipping them.
    package init(tokenizer: Tokenizer, renderSpecial: Bool = false) {
        self.tokenizer = tokenizer
        self.renderSpecial = renderSpecial
    }

    /// Text completed by this token; empty while a character is still incomplete.
    package mutating func append(_ id: TokenID) -> String {
        tokenizer.appendPiece(id, renderSpecial: renderSpecial, stripLeadingSpace: isFirst, into: &pending)
        isFirst = false
        let end = completePrefixLength(pending)
        if end == 0 { return "" }
        let text = String(decoding: pending[..<end], as: UTF8.self)
        pending.removeFirst(end)
        return text
    }

    /// Whatever is still held back (an unfinished character becomes U+FFFD). Call once at the end.
    package mutating func flush() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }
}

/// Length of the longest prefix of `bytes` that ends on a sequence boundary a UTF-8 decoder of the
/// whole buffer would also reach: everything except a trailing sequence that is valid so far but cut
/// short. Invalid bytes are part of the prefix (they decode to U+FFFD now and would later too), so
/// streaming yields exactly the text of decoding all bytes at once. Ranges per Unicode table 3-7.
func completePrefixLength(_ bytes: [UInt8]) -> Int {
    let n = bytes.count
    var i = 0
    while i < n {
        let lead = bytes[i]
        if lead < 0x80 {
            i += 1
            continue
        }
        let needed: Int
        var secondLow: UInt8 = 0x80, secondHigh: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: needed = 1
        case 0xE0: needed = 2; secondLow = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: needed = 2
        case 0xED: needed = 2; secondHigh = 0x9F
        case 0xF0: needed = 3; secondLow = 0x90
        case 0xF1...0xF3: needed = 3
        case 0xF4: needed = 3; secondHigh = 0x8F
        default:
            i += 1
            continue
        }
        var j = i + 1
        var k = 0
        while k < needed {
            if j >= n { return i }
            let byte = bytes[j]
            let low = k == 0 ? secondLow : 0x80, high = k == 0 ? secondHigh : 0xBF
            if byte < low || byte > high { break }
            j += 1
            k += 1
        }
        i = j
    }
    return n
}

// SentencePiece-style BPE (`tokenizer.ggml.model = llama`): spaces become "▁", the text starts as one
// symbol per UTF-8 character, and the adjacent pair whose concatenation is the highest-scoring token
// merges first (ties: leftmost), as llama.cpp's llm_tokenizer_spm. Characters left that are not tokens
// fall back to byte tokens "<0xXX>".

import GGUF

struct SentencePieceEncoder: Sendable {
    /// Token "<0xXX>" for each byte (or the byte itself as a one-byte token); nil where neither exists.
    let byteTokens: [TokenID?]
    let unknownID: TokenID?

    init(vocabulary: Vocabulary, unknownID: TokenID?) {
        let hex = Array("0123456789ABCDEF".utf8)
        byteTokens = (0..<256).map { byte in
            let name: [UInt8] = Array("<0x".utf8) + [hex[byte >> 4], hex[byte & 15], UInt8(ascii: ">")]
            return vocabulary.id(of: name) ?? vocabulary.id(of: [UInt8(byte)])
        }
        self.unknownID = unknownID
    }

    private struct Symbol {
        var start: Int
        var length: Int
        var previous: Int
        var next: Int
    }

    private struct Bigram: Comparable {
        let score: Float
        let left: Int
        let right: Int
        let length: Int

        /// "Less" pops first: higher score, then smaller left index.
        static func < (a: Bigram, b: Bigram) -> Bool {
            a.score != b.score ? a.score > b.score : a.left < b.left
        }
    }

    /// Appends the tokens of `text` (already escaped: spaces as "▁", space prefix added) to `output`.
    func encode(_ text: [UInt8], vocabulary: Vocabulary, into output: inout [TokenID]) {
        var symbols: [Symbol] = []
        var offset = 0
        while offset < text.count {
            let length = min(utf8Length(leadByte: text[offset]), text.count - offset)
            symbols.append(Symbol(start: offset, length: length, previous: symbols.count - 1,
                                  next: offset + length == text.count ? -1 : symbols.count + 1))
            offset += length
        }
        if symbols.isEmpty { return }

        var queue = Heap<Bigram>()
        text.withUnsafeBufferPointer { bytes in
            func tryAdd(_ left: Int, _ right: Int) {
                guard left >= 0, right >= 0 else { return }
                let start = symbols[left].start
                let length = symbols[left].length + symbols[right].length
                guard let id = vocabulary.id(of: UnsafeBufferPointer(rebasing: bytes[start..<(start + length)])) else { return }
                queue.push(Bigram(score: vocabulary.scores[Int(id)], left: left, right: right, length: length))
            }
            for i in 1..<symbols.count { tryAdd(i - 1, i) }
            while let bigram = queue.pop() {
                let left = bigram.left, right = bigram.right
                // Stale if either side has merged since the pair was queued.
                guard symbols[left].length > 0, symbols[right].length > 0,
                      symbols[left].length + symbols[right].length == bigram.length else { continue }
                symbols[left].length += symbols[right].length
                symbols[right].length = 0
                symbols[left].next = symbols[right].next
                if symbols[right].next >= 0 { symbols[symbols[right].next].previous = left }
                tryAdd(symbols[left].previous, left)
                tryAdd(left, symbols[left].next)
            }
            var i = 0
            while i >= 0 {
                let symbol = symbols[i]
                let piece = UnsafeBufferPointer(rebasing: bytes[symbol.start..<(symbol.start + symbol.length)])
                if let id = vocabulary.id(of: piece) {
                    output.append(id)
                } else {
                    for byte in piece {
                        if let id = byteTokens[Int(byte)] ?? unknownID { output.append(id) }
                    }
                }
                i = symbol.next
            }
        }
    }
}

/// Bytes in the UTF-8 sequence a lead byte starts (1 for a stray continuation byte).
@inline(__always) func utf8Length(leadByte: UInt8) -> Int {
    switch leadByte >> 4 {
    case 0xC, 0xD: return 2
    case 0xE: return 3
    case 0xF: return 4
    default: return 1
    }
}

/// A plain binary min-heap.
struct Heap<Element: Comparable> {
    private var items: [Element] = []

    var isEmpty: Bool { items.isEmpty }

    mutating func push(_ value: Element) {
        items.append(value)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if !(value < items[parent]) { break }
            items[child] = items[parent]
            child = parent
        }
        items[child] = value
    }

    mutating func pop() -> Element? {
        guard let last = items.popLast() else { return nil }
        guard !items.isEmpty else { return last }
        let top = items[0]
        var parent = 0
        while true {
            var child = 2 * parent + 1
            if child >= items.count { break }
            if child + 1 < items.count && items[child + 1] < items[child] { child += 1 }
            if !(items[child] < last) { break }
            items[parent] = items[child]
            parent = child
        }
        items[parent] = last
        return top
    }
}

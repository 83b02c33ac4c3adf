// Cuts special tokens out of raw text before pre-tokenization, in llama.cpp's order
// (tokenizer_st_partition): the longest special token is matched first across the whole text, then the
// next longest inside what is left, each time taking non-overlapping occurrences left to right.
//
// Why that order matters: with specials "bcd" and "ab", "abcd" becomes a + <bcd>, where a left-to-right
// scan would give <ab> + cd. To keep it cheap, one pass first finds every occurrence of every special
// token (bucketed by first byte); only tokens that occur are then applied, longest first.

import GGUF

enum Fragment: Equatable {
    case text(Range<Int>)
    case token(TokenID)
}

struct SpecialTokenMatcher: Sendable {
    private struct Special: Sendable {
        let id: TokenID
        let bytes: [UInt8]
        /// Control and unknown tokens are matched only when the caller asks for special parsing;
        /// user-defined tokens always (llama.cpp, after HF tokenizers).
        let alwaysMatched: Bool
    }

    /// Longest first; equal lengths by id (llama.cpp leaves their order unspecified).
    private let specials: [Special]
    /// Indices into `specials` of the tokens starting with each byte.
    private let byFirstByte: [[Int]]

    init(vocabulary: Vocabulary) {
        var specials: [Special] = []
        for id in 0..<vocabulary.count {
            let type = vocabulary.types[id]
            guard type == .control || type == .unknown || type == .userDefined else { continue }
            let bytes = Array(vocabulary.texts[id])
            guard !bytes.isEmpty else { continue }
            specials.append(Special(id: TokenID(id), bytes: bytes, alwaysMatched: type == .userDefined))
        }
        specials.sort { $0.bytes.count != $1.bytes.count ? $0.bytes.count > $1.bytes.count : $0.id < $1.id }
        var byFirstByte = [[Int]](repeating: [], count: 256)
        for (i, special) in specials.enumerated() { byFirstByte[Int(special.bytes[0])].append(i) }
        self.specials = specials
        self.byFirstByte = byFirstByte
    }

    /// `plainRanges` (sorted, disjoint byte ranges) are text a user wrote: control and unknown tokens are not
    /// matched where they would overlap one, so "<|im_start|>" typed into a message stays text.
    func partition(_ text: UnsafeBufferPointer<UInt8>, parseSpecial: Bool, plainRanges: [Range<Int>] = []) -> [Fragment] {
        if text.isEmpty { return [] }
        // Every occurrence (overlapping ones too) of each special token, by position.
        var occurrences: [Int: [Int]] = [:]
        if !specials.isEmpty {
            for start in 0..<text.count {
                let candidates = byFirstByte[Int(text[start])]
                if candidates.isEmpty { continue }
                for index in candidates {
                    let special = specials[index]
                    guard parseSpecial || special.alwaysMatched, special.bytes.count <= text.count - start else { continue }
                    if !special.alwaysMatched, !plainRanges.isEmpty,
                       plainRanges.contains(where: { $0.overlaps(start..<(start + special.bytes.count)) }) { continue }
                    if special.bytes.withUnsafeBufferPointer({ memoryEqual($0.baseAddress!, text.baseAddress! + start, $0.count) }) {
                        occurrences[index, default: []].append(start)
                    }
                }
            }
        }
        var fragments: [Fragment] = [.text(0..<text.count)]
        for index in occurrences.keys.sorted() {
            let positions = occurrences[index]!
            let length = specials[index].bytes.count
            var next: [Fragment] = []
            for fragment in fragments {
                guard case .text(let range) = fragment else {
                    next.append(fragment)
                    continue
                }
                var cursor = range.lowerBound
                for position in positions where position >= cursor {
                    if position + length > range.upperBound { break }
                    if position > cursor { next.append(.text(cursor..<position)) }
                    next.append(.token(specials[index].id))
                    cursor = position + length
                }
                if cursor < range.upperBound { next.append(.text(cursor..<range.upperBound)) }
            }
            fragments = next
        }
        return fragments
    }
}

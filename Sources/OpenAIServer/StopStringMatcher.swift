// Stop strings over streamed text: sits after the streaming detokenizer and before the response
// writer, so neither a streamed chunk nor a whole body ever shows any part of a stop string.
//
// Algorithm: text arrives in fragments. The matcher keeps a held-back tail, appends the fragment,
// and looks for the earliest full occurrence of any stop string; on a match everything before it is
// released and the rest is dropped. Otherwise it holds back the longest suffix that is still a prefix
// of some stop string (it may become a match with the next fragment) and releases the rest. Why not
// just hold back `maxStopLength - 1` characters: that would delay text that can never match, and a
// stream would lag by up to 3 chunks for nothing. Matching is per Unicode scalar, not per Character:
// a combining mark arriving in the next fragment would otherwise change an already-compared grapheme.

package struct StopStringMatcher: Sendable {
    private let stops: [[Unicode.Scalar]]
    private var held: [Unicode.Scalar] = []
    package private(set) var matched = false

    /// Empty stop strings are ignored (they would match before any text).
    package init(stops: [String]) {
        self.stops = stops.filter { !$0.isEmpty }.map { Array($0.unicodeScalars) }
    }

    /// Text that is now safe to emit, and whether a stop string matched (then nothing more may be
    /// appended: the generation is over and the stop string itself is never emitted).
    package mutating func append(_ fragment: String) -> (text: String, matched: Bool) {
        precondition(!matched, "append after a stop string matched")
        if stops.isEmpty { return (fragment, false) }
        held.append(contentsOf: fragment.unicodeScalars)
        if let start = earliestMatch() {
            let text = Self.string(held[..<start])
            held.removeAll()
            matched = true
            return (text, true)
        }
        let keep = longestSuffixThatIsAStopPrefix()
        let text = Self.string(held[..<(held.count - keep)])
        held.removeFirst(held.count - keep)
        return (text, false)
    }

    /// The held-back tail, at the end of generation: it can no longer become a stop string.
    package mutating func flush() -> String {
        defer { held.removeAll() }
        return Self.string(held[...])
    }

    private func earliestMatch() -> Int? {
        guard !held.isEmpty else { return nil }
        for start in 0..<held.count {
            for stop in stops where held.count - start >= stop.count {
                if held[start..<(start + stop.count)].elementsEqual(stop) { return start }
            }
        }
        return nil
    }

    private func longestSuffixThatIsAStopPrefix() -> Int {
        var best = 0
        for stop in stops {
            var length = min(stop.count - 1, held.count)
            while length > best {
                if held[(held.count - length)...].elementsEqual(stop[..<length]) {
                    best = length
                    break
                }
                length -= 1
            }
        }
        return best
    }

    private static func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }
}

// Splits text into the words BPE merges within, as llama.cpp's pre-tokenizer for `tokenizer.ggml.pre`
// does (src/llama-vocab.cpp, unicode.cpp). Hand-written matchers over scalars instead of a regex engine.
//
// The regex each kind stands for, applied left to right with ordered alternation:
//   gpt2    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   smollm  first \p{N} (every digit its own chunk), then gpt2 inside each chunk
//   llama3  (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*
//           |\s*[\r\n]+|\s+(?!\S)|\s+
//   qwen2   as llama3 with \p{N} (single digits)
// A chunk end acts like end of text: `\s+(?!\S)` keeps a whitespace run whole when nothing follows it.

package enum PreTokenizer: String, Sendable, CaseIterable {
    case gpt2, smollm, llama3, qwen2

    /// `tokenizer.ggml.pre` values llama.cpp maps to each kind's regex set.
    static let aliases: [String: PreTokenizer] = [
        "gpt2": .gpt2, "gpt-2": .gpt2, "phi-2": .gpt2, "jina-es": .gpt2, "jina-de": .gpt2, "mpt": .gpt2,
        "olmo": .gpt2, "jais": .gpt2, "trillion": .gpt2, "exaone4": .gpt2, "mellum": .gpt2,
        "smollm": .smollm, "starcoder": .smollm, "refact": .smollm, "command-r": .smollm, "codeshell": .smollm,
        "exaone": .smollm, "minerva-7b": .smollm,
        // (dbrx and smaug-bpe share llama3's regex but not its whole-word lookup; not mapped here.)
        "llama3": .llama3, "llama-v3": .llama3, "llama-bpe": .llama3, "falcon3": .llama3, "pixtral": .llama3,
        "qwen2": .qwen2, "deepseek-r1-qwen": .qwen2, "stablelm2": .qwen2, "megrez": .qwen2,
    ]

    static var supportedNames: [String] { aliases.keys.sorted() }

    init(ggufName name: String) throws(TokenizationError) {
        guard let kind = Self.aliases[name] else {
            throw .unknownPreTokenizer(name, supported: Self.supportedNames)
        }
        self = kind
    }

    /// llama.cpp skips the merge loop when a whole word is already a token (`ignore_merges`).
    var wholeWordsFirst: Bool { self == .llama3 }

    /// llama.cpp's default for `add_bos` when the GGUF does not say.
    var addsBOSByDefault: Bool { self == .llama3 }

    /// Appends the word boundaries of `scalars` (one chunk of text between special tokens) to `words`,
    /// as ranges of scalar indices. `classes[i]` are the CharacterClass bits of `scalars[i]`.
    func split(_ scalars: UnsafeBufferPointer<UInt32>, _ classes: UnsafeBufferPointer<UInt8>, into words: inout [Range<Int>]) {
        var matcher = Matcher(scalars: scalars, classes: classes, words: words)
        switch self {
        case .gpt2:
            matcher.gpt2(0, scalars.count)
        case .smollm:
            var start = 0
            for i in 0..<scalars.count where classes[i] & CharacterClass.number != 0 {
                matcher.gpt2(start, i)
                matcher.words.append(i..<(i + 1))
                start = i + 1
            }
            matcher.gpt2(start, scalars.count)
        case .llama3:
            matcher.llama3(0, scalars.count, digitGroup: 3)
        case .qwen2:
            matcher.llama3(0, scalars.count, digitGroup: 1)
        }
        words = matcher.words
    }
}

private let apostrophe: UInt32 = 0x27, space: UInt32 = 0x20, cr: UInt32 = 0x0D, lf: UInt32 = 0x0A

/// One pass over a chunk [lo, hi). `cls(p)` is 0 outside the chunk, which ends every run there.
private struct Matcher {
    let scalars: UnsafeBufferPointer<UInt32>
    let classes: UnsafeBufferPointer<UInt8>
    var words: [Range<Int>]
    var lo = 0, hi = 0, emitted = 0

    init(scalars: UnsafeBufferPointer<UInt32>, classes: UnsafeBufferPointer<UInt8>, words: [Range<Int>]) {
        self.scalars = scalars
        self.classes = classes
        self.words = words
    }

    @inline(__always) func cls(_ p: Int) -> UInt8 { p < hi ? classes[p] : 0 }
    @inline(__always) func isLetter(_ p: Int) -> Bool { cls(p) & CharacterClass.letter != 0 }
    @inline(__always) func isNumber(_ p: Int) -> Bool { cls(p) & CharacterClass.number != 0 }
    @inline(__always) func isSpace(_ p: Int) -> Bool { cls(p) & CharacterClass.whitespace != 0 }
    /// [^\s\p{L}\p{N}] inside the chunk.
    @inline(__always) func isOther(_ p: Int) -> Bool {
        let c = cls(p)
        return c != 0 && c & (CharacterClass.letter | CharacterClass.number | CharacterClass.whitespace) == 0
    }

    @inline(__always) mutating func emit(_ end: Int) {
        if end > emitted { words.append(emitted..<end) }
        emitted = end
    }

    /// Length of a contraction ('s 't 'm 'd 're 've 'll) starting at p, or 0. Upper case only counts
    /// when `anyCase`: the gpt2 regex is case-sensitive, so "DON'T" splits as DON ' T there.
    @inline(__always) func contraction(at p: Int, anyCase: Bool) -> Int {
        guard scalars[p] == apostrophe, p + 1 < hi else { return 0 }
        func lower(_ v: UInt32) -> UInt32 { anyCase && v >= 0x41 && v <= 0x5A ? v | 0x20 : v }
        let a = lower(scalars[p + 1])
        if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 { return 2 }  // s t m d
        guard p + 2 < hi else { return 0 }
        let b = lower(scalars[p + 2])
        if (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) { return 3 }  // re ve ll
        return 0
    }

    mutating func gpt2(_ lo: Int, _ hi: Int) {
        self.lo = lo
        self.hi = hi
        emitted = lo
        var p = lo
        while p < hi {
            let c = scalars[p]
            let n = contraction(at: p, anyCase: false)
            if n > 0 {
                p += n
                emit(p)
                continue
            }
            // An optional leading space joins the run that follows it.
            let q = c == space ? p + 1 : p
            if isLetter(q) {
                p = q
                while isLetter(p) { p += 1 }
                emit(p)
                continue
            }
            if isNumber(q) {
                p = q
                while isNumber(p) { p += 1 }
                emit(p)
                continue
            }
            if isOther(q) {
                p = q
                while isOther(p) { p += 1 }
                emit(p)
                continue
            }
            var run = 0
            while isSpace(p + run) { run += 1 }
            if run > 1 && p + run < hi {
                // \s+(?!\S): leave the last space to prefix the next word.
                p += run - 1
            } else if run > 0 {
                p += run
            } else {
                p += 1
            }
            emit(p)
        }
    }

    mutating func llama3(_ lo: Int, _ hi: Int, digitGroup: Int) {
        self.lo = lo
        self.hi = hi
        emitted = lo
        var p = lo
        while p < hi {
            let c = scalars[p]
            let n = contraction(at: p, anyCase: true)
            if n > 0 {
                p += n
                emit(p)
                continue
            }
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if c != cr && c != lf && !isNumber(p) && (isLetter(p) || isLetter(p + 1)) {
                p += 1
                while isLetter(p) { p += 1 }
                emit(p)
                continue
            }
            // \p{N}{1,digitGroup}
            if isNumber(p) {
                var groupStart = p
                while isNumber(p) {
                    p += 1
                    if p - groupStart >= digitGroup {
                        emit(p)
                        groupStart = p
                    }
                }
                emit(p)
                continue
            }
            //  ?[^\s\p{L}\p{N}]+[\r\n]*  (llama.cpp tests the space itself for presence, so a lone
            // trailing space also lands here; it forms the same one-space word either way.)
            let q = c == space ? p + 1 : p
            let next = cls(q)
            if next & (CharacterClass.letter | CharacterClass.number | CharacterClass.whitespace) == 0 {
                p = q
                while isOther(p) { p += 1 }
                while p < hi && (scalars[p] == cr || scalars[p] == lf) { p += 1 }
                emit(p)
                continue
            }
            var run = 0
            var afterLastNewline = -1
            while isSpace(p + run) {
                let s = scalars[p + run]
                if s == cr || s == lf { afterLastNewline = p + run + 1 }
                run += 1
            }
            if afterLastNewline >= 0 {
                // \s*[\r\n]+
                p = afterLastNewline
            } else if run > 1 && p + run < hi {
                p += run - 1
            } else if run > 0 {
                p += run
            } else {
                p += 1
            }
            emit(p)
        }
    }
}

// The token table read from GGUF metadata: each token's stored text, type, score and the bytes it
// decodes to, plus a hash index from text to id. Shared by both tokenizer families.

import GGUF

/// `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`).
package enum TokenType: Int32, Sendable {
    case undefined = 0, normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6

    init(raw: Int32) { self = TokenType(rawValue: raw) ?? .undefined }
}

/// Many short byte strings in one buffer: element i is storage[offsets[i] ..< offsets[i + 1]].
struct FlatBytes: Sendable {
    private(set) var storage: [UInt8] = []
    private(set) var offsets: [Int32] = [0]

    var count: Int { offsets.count - 1 }

    mutating func append(_ bytes: some Sequence<UInt8>) {
        storage.append(contentsOf: bytes)
        offsets.append(Int32(storage.count))
    }

    func range(_ i: Int) -> Range<Int> { Int(offsets[i])..<Int(offsets[i + 1]) }
    subscript(i: Int) -> ArraySlice<UInt8> { storage[range(i)] }
}

/// Open-addressing hash index from byte strings to ids, verified against the strings themselves.
/// Why not `[String: TokenID]`: lookups happen on byte slices in the encode loop, and hashing a
/// String (with its normalization-aware equality) costs several times a plain FNV over bytes.
struct BytesIndex: Sendable {
    private var slots: [Int32]
    private let mask: Int

    /// Indexes `keys`; on duplicate keys the first id wins.
    init(_ keys: FlatBytes) {
        var capacity = 16
        while capacity < keys.count * 2 { capacity <<= 1 }
        slots = [Int32](repeating: -1, count: capacity)
        mask = capacity - 1
        keys.storage.withUnsafeBufferPointer { storage in
            for i in 0..<keys.count {
                let r = keys.range(i)
                let key = UnsafeBufferPointer(rebasing: storage[r])
                var slot = Self.hash(key) & mask
                var duplicate = false
                while slots[slot] >= 0 {
                    let other = keys.range(Int(slots[slot]))
                    if other.count == key.count, storage[other].elementsEqual(key) {
                        duplicate = true
                        break
                    }
                    slot = (slot + 1) & mask
                }
                if !duplicate { slots[slot] = Int32(i) }
            }
        }
    }

    static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return Int(truncatingIfNeeded: h ^ (h >> 29))
    }

    /// Id of the key equal to `bytes`, or nil.
    func find(_ bytes: UnsafeBufferPointer<UInt8>, in keys: FlatBytes) -> Int32? {
        var slot = Self.hash(bytes) & mask
        return keys.storage.withUnsafeBufferPointer { storage in
            while true {
                let id = slots[slot]
                if id < 0 { return nil }
                let r = keys.range(Int(id))
                if r.count == bytes.count, memoryEqual(storage.baseAddress! + r.lowerBound, bytes.baseAddress, r.count) {
                    return id
                }
                slot = (slot + 1) & mask
            }
        }
    }

    func find(_ bytes: [UInt8], in keys: FlatBytes) -> Int32? {
        bytes.withUnsafeBufferPointer { find($0, in: keys) }
    }
}

@inline(__always)
func memoryEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>?, _ count: Int) -> Bool {
    guard let b else { return count == 0 }
    for i in 0..<count where a[i] != b[i] { return false }
    return true
}

struct Vocabulary: Sendable {
    /// UTF-8 of each token's text exactly as stored in `tokenizer.ggml.tokens`.
    let texts: FlatBytes
    let types: [TokenType]
    /// SentencePiece scores (higher merges first); zeros when absent.
    let scores: [Float]
    let index: BytesIndex

    var count: Int { types.count }

    init(tokens: [String], types rawTypes: [Int32]?, scores: [Float]?) throws(TokenizationError) {
        guard !tokens.isEmpty else {
            throw .badMetadata(key: GGUFKey.tokens, reason: "the token list is empty")
        }
        if let rawTypes, rawTypes.count < tokens.count {
            throw .badMetadata(key: GGUFKey.tokenTypes, reason: "\(rawTypes.count) types for \(tokens.count) tokens")
        }
        if let scores, scores.count < tokens.count {
            throw .badMetadata(key: GGUFKey.scores, reason: "\(scores.count) scores for \(tokens.count) tokens")
        }
        var texts = FlatBytes()
        for token in tokens { texts.append(token.utf8) }
        self.texts = texts
        self.types = rawTypes.map { $0.prefix(tokens.count).map(TokenType.init(raw:)) }
            ?? [TokenType](repeating: .normal, count: tokens.count)
        self.scores = scores.map { Array($0.prefix(tokens.count)) } ?? [Float](repeating: 0, count: tokens.count)
        self.index = BytesIndex(texts)
    }

    func text(_ id: Int) -> String { String(decoding: texts[id], as: UTF8.self) }

    func id(of text: UnsafeBufferPointer<UInt8>) -> TokenID? { index.find(text, in: texts) }
    func id(of text: [UInt8]) -> TokenID? { index.find(text, in: texts) }
    func id(of text: String) -> TokenID? { id(of: Array(text.utf8)) }
}

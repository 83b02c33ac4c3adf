// Prefix-cache keys: the hash of a full block chains the hash of the block before it with this block's
// token ids, so equal hashes mean equal whole prefixes, not just equal blocks. Only full blocks are
// hashed: a partial block's KV is still changing.

import Crypto
import Foundation
import GGUF

package struct BlockHash: Hashable, Sendable {
    /// The 32-byte SHA-256 digest as four words (cheap to hash and compare).
    package let words: (UInt64, UInt64, UInt64, UInt64)

    package static func == (a: BlockHash, b: BlockHash) -> Bool { a.words == b.words }
    package func hash(into hasher: inout Hasher) { hasher.combine(words.0); hasher.combine(words.1) }

    /// hash_i = SHA-256(hash_{i-1} || token ids of block i as little-endian Int32); hash_{-1} is empty.
    package init(parent: BlockHash?, tokens: ArraySlice<TokenID>) {
        var hasher = SHA256()
        if let parent { withUnsafeBytes(of: parent.words) { hasher.update(bufferPointer: $0) } }
        for t in tokens { withUnsafeBytes(of: t.littleEndian) { hasher.update(bufferPointer: $0) } }
        words = hasher.finalize().withUnsafeBytes { $0.loadUnaligned(as: (UInt64, UInt64, UInt64, UInt64).self) }
    }

    /// The root of a salted chain: the "parent" of a salted request's first block, so its every block hash
    /// differs from an unsalted or otherwise salted request's, and no block is shared across salts.
    package init(salt: String) {
        var hasher = SHA256()
        hasher.update(data: Array("tally-cache-salt\u{0}\(salt)".utf8))
        words = hasher.finalize().withUnsafeBytes { $0.loadUnaligned(as: (UInt64, UInt64, UInt64, UInt64).self) }
    }

    /// Hashes of every full block of `tokens`, in order.
    package static func chain(_ tokens: [TokenID], blockSize: Int, from start: Int = 0, parent: BlockHash? = nil) -> [BlockHash] {
        var out: [BlockHash] = []
        var previous = parent
        var b = start
        while (b + 1) * blockSize <= tokens.count {
            let h = BlockHash(parent: previous, tokens: tokens[b * blockSize..<(b + 1) * blockSize])
            out.append(h)
            previous = h
            b += 1
        }
        return out
    }
}

// A per-encode-call memo of word -> token ids: a direct-mapped table keyed by the word's bytes, so a word
// seen earlier in the same text skips the merge loop. Exact: a hit compares the stored bytes.

import GGUF

struct WordCache {
    static let minimumTextBytes = 2048
    static let maximumWordBytes = 48
    private static let slotCount = 4096
    /// Bytes and ids stored before the table is cleared, to bound memory on very long texts.
    private static let storageLimit = 1 << 20

    private struct Entry {
        var hash: UInt64 = 0
        var bytesStart: Int32 = -1
        var bytesCount: Int32 = 0
        var idsStart: Int32 = 0
        var idsCount: Int32 = 0
    }

    private var entries: [Entry] = []
    private var bytes: [UInt8] = []
    private var ids: [TokenID] = []

    private static func hash(_ word: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in word { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return h
    }

    /// Appends the cached ids of `word` and returns true, or returns false on a miss.
    mutating func lookup(_ word: UnsafeBufferPointer<UInt8>, into output: inout [TokenID]) -> Bool {
        if entries.isEmpty { return false }
        let h = Self.hash(word)
        let entry = entries[Int(truncatingIfNeeded: h) & (Self.slotCount - 1)]
        guard entry.bytesStart >= 0, entry.hash == h, Int(entry.bytesCount) == word.count else { return false }
        let same = bytes.withUnsafeBufferPointer {
            memoryEqual($0.baseAddress! + Int(entry.bytesStart), word.baseAddress, word.count)
        }
        guard same else { return false }
        output.append(contentsOf: ids[Int(entry.idsStart)..<Int(entry.idsStart + entry.idsCount)])
        return true
    }

    mutating func insert(_ word: UnsafeBufferPointer<UInt8>, ids wordIDs: ArraySlice<TokenID>) {
        if entries.isEmpty { entries = [Entry](repeating: Entry(), count: Self.slotCount) }
        if bytes.count + ids.count > Self.storageLimit {
            bytes.removeAll(keepingCapacity: true)
            ids.removeAll(keepingCapacity: true)
            for i in entries.indices { entries[i].bytesStart = -1 }
        }
        let h = Self.hash(word)
        entries[Int(truncatingIfNeeded: h) & (Self.slotCount - 1)] = Entry(
            hash: h, bytesStart: Int32(bytes.count), bytesCount: Int32(word.count),
            idsStart: Int32(ids.count), idsCount: Int32(wordIDs.count))
        bytes.append(contentsOf: word)
        ids.append(contentsOf: wordIDs)
    }
}

// The paged KV store: keys and values of every layer in blocks of `blockSize` positions. A sequence's
// block table lists its blocks in order; position p lives in block table[p / blockSize], slot p % blockSize.
// Who owns which block is the Engine's business (block pool, prefix cache); this only stores values.

import Kernels
#if canImport(Glibc)
import Glibc
#endif

package typealias BlockID = Int32

/// How the KV store holds values. f16 is the default, as in llama.cpp: half the memory and half the bytes
/// attention reads of f32. Queries meeting an f16 cache are rounded to f16 too (`roundQueries`), as
/// llama.cpp's one-token attention does; with that, greedy outputs equal llama.cpp's on the reference
/// prompts in either type. On this small model f16's rounding moves logits by up to a few tenths, so greedy
/// text can part from f32's where the top two tokens are that close.
package enum KVType: String, Sendable, CaseIterable {
    case f32, f16
    package static let `default` = KVType.f16
    package var bytesPerValue: Int { self == .f32 ? 4 : 2 }
}

package final class KVStore: @unchecked Sendable {
    package let layerCount: Int
    package let blockCount: Int
    package let blockSize: Int
    package let kvWidth: Int
    package let type: KVType
    /// Per layer: keys [blockCount * blockSize, kvWidth], row-major, in `type`.
    let keys: [UnsafeMutableRawPointer]
    /// Per layer: values, same shape.
    let values: [UnsafeMutableRawPointer]

    package init(config: ModelConfig, blockCount: Int, blockSize: Int, type: KVType = .default) {
        layerCount = config.layerCount
        self.blockCount = blockCount
        self.blockSize = blockSize
        self.type = type
        kvWidth = config.kvWidth
        let bytes = blockCount * blockSize * kvWidth * type.bytesPerValue
        // Pages are touched only when written: an unused block costs no resident memory. Page-aligned, so
        // `releasePages` can hand whole pages back.
        keys = (0..<layerCount).map { _ in .allocate(byteCount: bytes, alignment: KVStore.pageSize) }
        values = (0..<layerCount).map { _ in .allocate(byteCount: bytes, alignment: KVStore.pageSize) }
    }

    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Returns to the OS the pages that hold only positions of `blocks` (blocks that hold nothing worth
    /// keeping): their contents read back as zeros, and they cost no resident memory until written again.
    /// A page shared with a block not listed stays. Returns the bytes handed back.
    @discardableResult
    package func releasePages(of blocks: [BlockID]) -> Int {
        let blockBytes = blockSize * kvWidth * type.bytesPerValue
        // Runs of consecutive blocks, as byte ranges within each layer's array.
        var runs: [(start: Int, end: Int)] = []
        for b in Set(blocks).sorted() {
            let start = Int(b) * blockBytes
            if let last = runs.last, last.end == start { runs[runs.count - 1].end = start + blockBytes } else { runs.append((start, start + blockBytes)) }
        }
        var released = 0
        for base in keys + values {
            for run in runs {
                let first = (Int(bitPattern: base) + run.start + Self.pageSize - 1) / Self.pageSize * Self.pageSize
                let end = (Int(bitPattern: base) + run.end) / Self.pageSize * Self.pageSize
                guard end > first, madvise(UnsafeMutableRawPointer(bitPattern: first), end - first, MADV_DONTNEED) == 0 else { continue }
                released += end - first
            }
        }
        return released
    }

    deinit {
        keys.forEach { $0.deallocate() }
        values.forEach { $0.deallocate() }
    }

    /// Bytes for `blocks` blocks of a model (keys and values).
    package static func bytes(config: ModelConfig, blocks: Int, blockSize: Int, type: KVType = .default) -> Int {
        blocks * blockSize * config.kvWidth * config.layerCount * 2 * type.bytesPerValue
    }

    /// Where position `position` of a sequence with `table` is stored: row index in a layer's arrays.
    @inline(__always)
    package func row(table: UnsafePointer<BlockID>, position: Int) -> Int {
        Int(table[position / blockSize]) * blockSize + position % blockSize
    }

    /// Copies the first `slots` positions of block `source` into block `destination`, in every layer.
    package func copy(from source: BlockID, to destination: BlockID, slots: Int) {
        guard source != destination, slots > 0 else { return }
        let rowBytes = kvWidth * type.bytesPerValue, blockBytes = blockSize * rowBytes
        for cache in keys + values {
            (cache + Int(destination) * blockBytes).copyMemory(from: cache + Int(source) * blockBytes, byteCount: slots * rowBytes)
        }
    }

    /// With an f16 cache, rounds `count` query values to f16 in place: each q·k product is then one of two
    /// f16 values, exact in f32, as in llama.cpp's attention over an f16 cache. An f32 cache leaves q alone.
    @inline(__always)
    func roundQueries(_ q: UnsafeMutablePointer<Float>, count: Int) {
        if type == .f16 { roundToHalf(q, count: count) }
    }

    /// Stores `count` values from `source` at value `offset` of `row` in one layer's keys or values.
    @inline(__always)
    func store(_ source: UnsafePointer<Float>, into cache: UnsafeMutableRawPointer, row: Int, offset: Int, count: Int) {
        let index = row * kvWidth + offset
        switch type {
        case .f32: (cache.assumingMemoryBound(to: Float.self) + index).update(from: source, count: count)
        case .f16: convertToHalf(source, into: cache.assumingMemoryBound(to: UInt16.self) + index, count: count)
        }
    }
}

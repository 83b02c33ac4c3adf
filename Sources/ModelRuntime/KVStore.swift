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
/// q8_0 stores each KV head's row as Q8_0 blocks (llama.cpp's `--cache-type-k/v q8_0`): 34 bytes per 32
/// values, so 1.88x the positions of f16 in the same memory. Attention dequantizes a block's rows once per
/// tile and reads them as f32; queries stay f32 (llama.cpp rounds them to Q8_0 to use its int8 dot product;
/// keeping them costs nothing here and loses no precision).
package enum KVType: String, Sendable, CaseIterable {
    case f32, f16, q8_0
    package static let `default` = KVType.f16

    /// Bytes of one position's keys (or values) of one layer, `width` values.
    package func rowBytes(width: Int) -> Int {
        switch self {
        case .f32: return 4 * width
        case .f16: return 2 * width
        case .q8_0: return width / 32 * 34
        }
    }

    var cacheValues: CacheValues {
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .q8_0: return .q8_0
        }
    }

    /// Refuses a type the model's shape cannot hold: Q8_0 blocks of 32 must not straddle KV heads.
    package func check(for config: ModelConfig) throws {
        if self == .q8_0, config.headDim % 32 != 0 {
            throw RuntimeError.badHyperParameter(key: "kv-type q8_0", value: "head width \(config.headDim)",
                                                 reason: "a Q8_0 KV cache needs a head width that is a multiple of 32; use f16")
        }
    }
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

    /// Bytes of one position in one layer's keys (or values).
    let rowBytes: Int

    /// `type` must pass `type.check(for: config)`.
    package init(config: ModelConfig, blockCount: Int, blockSize: Int, type: KVType = .default) {
        precondition((try? type.check(for: config)) != nil, "KV type \(type) does not fit this model's heads")
        layerCount = config.layerCount
        self.blockCount = blockCount
        self.blockSize = blockSize
        self.type = type
        kvWidth = config.kvWidth
        rowBytes = type.rowBytes(width: kvWidth)
        let bytes = blockCount * blockSize * rowBytes
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
        let blockBytes = blockSize * rowBytes
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
        blocks * blockSize * type.rowBytes(width: config.kvWidth) * config.layerCount * 2
    }

    /// Where position `position` of a sequence with `table` is stored: row index in a layer's arrays.
    @inline(__always)
    package func row(table: UnsafePointer<BlockID>, position: Int) -> Int {
        Int(table[position / blockSize]) * blockSize + position % blockSize
    }

    /// Copies the first `slots` positions of block `source` into block `destination`, in every layer.
    package func copy(from source: BlockID, to destination: BlockID, slots: Int) {
        guard source != destination, slots > 0 else { return }
        let blockBytes = blockSize * rowBytes
        for cache in keys + values {
            (cache + Int(destination) * blockBytes).copyMemory(from: cache + Int(source) * blockBytes, byteCount: slots * rowBytes)
        }
    }

    /// With an f16 cache, rounds `count` query values to f16 in place: each q·k product is then one of two
    /// f16 values, exact in f32, as in llama.cpp's attention over an f16 cache. f32 and Q8_0 leave q alone.
    @inline(__always)
    func roundQueries(_ q: UnsafeMutablePointer<Float>, count: Int) {
        if type == .f16 { roundToHalf(q, count: count) }
    }

    /// Stores `count` values from `source` at value `offset` of `row` in one layer's keys or values. For
    /// Q8_0, offset and count are multiples of 32 (the K and V products are cut into pieces of whole
    /// blocks: their row groups in Weights).
    @inline(__always)
    func store(_ source: UnsafePointer<Float>, into cache: UnsafeMutableRawPointer, row: Int, offset: Int, count: Int) {
        let index = row * kvWidth + offset
        switch type {
        case .f32: (cache.assumingMemoryBound(to: Float.self) + index).update(from: source, count: count)
        case .f16: convertToHalf(source, into: cache.assumingMemoryBound(to: UInt16.self) + index, count: count)
        case .q8_0: convertToQ8_0(source, into: cache + row * rowBytes + offset / 32 * 34, count: count)
        }
    }
}

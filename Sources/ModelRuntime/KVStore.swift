// The paged KV store: keys and values of every layer in blocks of `blockSize` positions. A sequence's
// block table lists its blocks in order; position p lives in block table[p / blockSize], slot p % blockSize.
// Who owns which block is the Engine's business (block pool, prefix cache); this only stores values.

package typealias BlockID = Int32

package final class KVStore: @unchecked Sendable {
    package let layerCount: Int
    package let blockCount: Int
    package let blockSize: Int
    package let kvWidth: Int
    /// Per layer: keys [blockCount * blockSize, kvWidth], row-major f32.
    let keys: [UnsafeMutablePointer<Float>]
    /// Per layer: values, same shape.
    let values: [UnsafeMutablePointer<Float>]

    package init(config: ModelConfig, blockCount: Int, blockSize: Int = 16) {
        layerCount = config.layerCount
        self.blockCount = blockCount
        self.blockSize = blockSize
        kvWidth = config.kvWidth
        let count = blockCount * blockSize * kvWidth
        // Pages are touched only when written: an unused block costs no resident memory.
        keys = (0..<layerCount).map { _ in .allocate(capacity: count) }
        values = (0..<layerCount).map { _ in .allocate(capacity: count) }
    }

    deinit {
        keys.forEach { $0.deallocate() }
        values.forEach { $0.deallocate() }
    }

    /// Bytes for `blocks` blocks of a model (keys and values, f32).
    package static func bytes(config: ModelConfig, blocks: Int, blockSize: Int = 16) -> Int {
        blocks * blockSize * config.kvWidth * config.layerCount * 2 * MemoryLayout<Float>.size
    }

    /// Where position `position` of a sequence with `table` is stored: row index in a layer's arrays.
    @inline(__always)
    package func row(table: UnsafePointer<BlockID>, position: Int) -> Int {
        Int(table[position / blockSize]) * blockSize + position % blockSize
    }
}

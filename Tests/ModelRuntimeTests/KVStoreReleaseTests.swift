// KVStore.releasePages: only whole pages inside the given blocks go back to the OS (reading back as zeros);
// every byte of any other block is untouched.

import Foundation
import Testing
@testable import ModelRuntime

@Suite struct KVStoreReleaseTests {
    @Test(arguments: [KVType.f32, .f16])
    func releasingBlocksZeroesOnlyWholePagesInsideThem(type: KVType) throws {
        let model = try loadTiny("q8_0")
        let kv = KVStore(config: model.config, blockCount: 256, blockSize: 16, type: type)
        let blockBytes = kv.blockSize * type.rowBytes(width: kv.kvWidth)
        let arrayBytes = kv.blockCount * blockBytes
        for base in kv.keys + kv.values { base.initializeMemory(as: UInt8.self, repeating: 0xAB, count: arrayBytes) }

        let released = kv.releasePages(of: Array(BlockID(8)..<BlockID(200)) + [230])  // a long run and a lone block
        #expect(released > 0)
        var zeroed = 0
        for base in kv.keys + kv.values {
            let bytes = base.assumingMemoryBound(to: UInt8.self)
            for i in 0..<arrayBytes where bytes[i] != 0xAB {
                #expect(bytes[i] == 0)
                let block = i / blockBytes
                #expect((8..<200).contains(block) || block == 230, "byte \(i) of block \(block) changed")
                zeroed += 1
            }
        }
        #expect(zeroed == released)
        // The run's interior pages are all released: at least its size less a page at each end, per array.
        #expect(released >= (kv.keys.count * 2) * ((200 - 8) * blockBytes - 2 * KVStore.pageSize))
    }
}

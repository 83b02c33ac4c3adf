// Q8_0 quantization and dequantization of every readable type, bit for bit against vectors that
// gguf-py produced (Fixtures/make_codec_vectors.py regenerates them).

import Foundation
import GGUF
import Testing

struct CodecVectors: Decodable {
    struct QuantizeCase: Decodable { var name: String; var x: [UInt32]; var q8_0: String }
    struct DequantizeCase: Decodable { var type: String; var bytes: String; var f32: [UInt32] }
    var format_version: Int
    var generator: String
    var q8_0_quantize: [QuantizeCase]
    var dequantize: [DequantizeCase]

    static func load() throws -> CodecVectors {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/codec_vectors", withExtension: "json"))
        let vectors = try JSONDecoder().decode(CodecVectors.self, from: Data(contentsOf: url))
        #expect(vectors.format_version == 1, "regenerate with: python3 Tests/GGUFTests/Fixtures/make_codec_vectors.py")
        return vectors
    }
}

func hexBytes(_ hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var i = hex.startIndex
    while i < hex.endIndex {
        let j = hex.index(i, offsetBy: 2)
        out.append(UInt8(hex[i..<j], radix: 16)!)
        i = j
    }
    return out
}

@Suite struct CodecTests {
    @Test func q8_0QuantizationIsBitExactWithGGUFPy() throws {
        let vectors = try CodecVectors.load()
        #expect(vectors.q8_0_quantize.count >= 10)
        for c in vectors.q8_0_quantize {
            let x = c.x.map { Float(bitPattern: $0) }
            let ours = quantizeQ8_0(x)
            let theirs = hexBytes(c.q8_0)
            #expect(ours == theirs, "case '\(c.name)': first differing byte at \(zip(ours, theirs).enumerated().first { $1.0 != $1.1 }?.offset ?? -1)")
        }
    }

    @Test func dequantizationMatchesGGUFPyForEveryReadableType() throws {
        let vectors = try CodecVectors.load()
        #expect(Set(vectors.dequantize.map(\.type)) == ["Q4_0", "Q4_1", "Q8_0", "F16", "BF16"])
        for c in vectors.dequantize {
            let type = try #require(GGMLType(name: c.type))
            let bytes = hexBytes(c.bytes)
            let ours = bytes.withUnsafeBytes { type.dequantize($0, count: c.f32.count) }
            #expect(ours.map(\.bitPattern) == c.f32, "type \(c.type)")
        }
    }

    @Test func f32DequantizeIsIdentity() {
        let x: [Float] = [1, -2.5, .pi, 0, -0, Float(bitPattern: 0x0001_0000), 3e38]
        let out = x.withUnsafeBytes { GGMLType.f32.dequantize($0, count: x.count) }
        #expect(out.map(\.bitPattern) == x.map(\.bitPattern))
    }

    @Test func q8_0NonFiniteValuesDoNotTrap() {
        // amax = inf gives id = 0 and inf * 0 = NaN; C's (int8_t)roundf(NaN) is 0 on x86-64.
        var x = [Float](repeating: 1, count: 32)
        x[3] = .infinity
        let q = quantizeQ8_0(x)
        #expect(q.count == 34)
        #expect(q[2...].allSatisfy { $0 == 0 })
    }
}

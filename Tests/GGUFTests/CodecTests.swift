// Q8_0 quantization and dequantization of every readable type, bit for bit against vectors that
// gguf-py produced (Fixtures/make_codec_vectors.py regenerates them), and ggml's block sizes.

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
        // Every type but F32 (whose dequantization is the identity, tested below) has vectors.
        #expect(Set(vectors.dequantize.map(\.type)) == Set(GGMLType.allCases.filter { $0 != .f32 }.map(\.name)))
        for (i, c) in vectors.dequantize.enumerated() {
            let type = try #require(GGMLType(name: c.type))
            let bytes = hexBytes(c.bytes)
            #expect(c.f32.count % type.blockSize == 0 && bytes.count == type.byteCount(elements: c.f32.count), "case \(i) \(c.type)")
            let ours = bytes.withUnsafeBytes { type.dequantize($0, count: c.f32.count) }
            let first = zip(ours.map(\.bitPattern), c.f32).enumerated().first { $1.0 != $1.1 }
            #expect(ours.map(\.bitPattern) == c.f32, "case \(i) \(c.type): first differing element \(first.map { "\($0.offset): \(Float(bitPattern: $0.element.0)) vs \(Float(bitPattern: $0.element.1))" } ?? "none")")
        }
    }

    @Test func newTypesHaveSeveralBlocksOfVectors() throws {
        let vectors = try CodecVectors.load()
        for type in [GGMLType.q5_0, .q5_1, .iq4_nl, .q2_k, .q3_k, .q4_k, .q5_k, .q6_k] {
            let elements = vectors.dequantize.filter { $0.type == type.name }.reduce(0) { $0 + $1.f32.count }
            #expect(elements / type.blockSize >= 6, "\(type.name): \(elements / type.blockSize) blocks")
        }
    }

    /// ggml's ggml_type_size and ggml_blck_size (gguf-py's GGML_QUANT_SIZES), raw value -> (elements, bytes).
    @Test func blockSizesAreGGMLs() {
        let ggml: [UInt32: (Int, Int)] = [
            0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 10: (256, 84),
            11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 20: (32, 18), 30: (1, 2),
        ]
        #expect(Set(GGMLType.allCases.map(\.rawValue)) == Set(ggml.keys))
        for type in GGMLType.allCases {
            let (size, bytes) = ggml[type.rawValue]!
            #expect(type.blockSize == size && type.blockBytes == bytes, "\(type.name)")
            #expect(type.byteCount(elements: 3 * size) == 3 * bytes, "\(type.name)")
            #expect(GGMLType(name: type.name.lowercased()) == type && GGMLType.knownName(raw: type.rawValue) == type.name)
        }
        #expect(GGMLType.knownName(raw: 15) == "Q8_K" && GGMLType.knownName(raw: 23) == "IQ4_XS")
        #expect(GGMLType.knownName(raw: 999) == nil)
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

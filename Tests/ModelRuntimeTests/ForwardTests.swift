// The forward pass on two tiny models against an independent numpy forward pass (Fixtures/
// make_tiny_models.py), and the batching invariants: a sequence's logits are the same alone or batched
// with others, prefilled at once or in chunks, on 1 or 2 threads.

import Foundation
import GGUF
import Kernels
@testable import ModelRuntime
import Testing
import TestSupport

struct TinyGoldens: Decodable {
    struct Prompt: Decodable { var name: String; var tokens: [Int32]; var argmax: [Int32]; var argmax_margins: [Double]; var logits: [[Float]] }
    struct Greedy: Decodable { var prompt_tokens: [Int32]; var tokens: [Int32] }
    struct Model: Decodable { var file: String; var logits_abs_tolerance: Float; var tied_embeddings: Bool; var prompts: [Prompt]; var greedy: Greedy }
    var format_version: Int
    var models: [String: Model]

    static let shared: TinyGoldens = {
        let url = Bundle.module.url(forResource: "Fixtures/tiny_goldens", withExtension: "json")!
        return try! JSONDecoder().decode(TinyGoldens.self, from: Data(contentsOf: url))
    }()
}

func tinyModelPath(_ kind: String) -> String {
    Bundle.module.url(forResource: "Fixtures/tiny-\(kind)", withExtension: "gguf")!.path
}

func loadTiny(_ kind: String, threads: Int = 2) throws -> LlamaModel {
    try LlamaModel(file: GGUFFile(path: tinyModelPath(kind)), pool: ComputePool(threads: threads))
}

/// Logits of every position of `tokens` as one sequence, prefilled in chunks of `chunk`.
func logitsOfAllPositions(_ model: LlamaModel, _ tokens: [Int32], chunk: Int = .max, kvType: KVType = .f32) throws -> [[Float]] {
    let kv = KVStore(config: model.config, blockCount: (tokens.count + 15) / 16 + 1, blockSize: 16, type: kvType)
    let table = (0..<kv.blockCount).map { BlockID(kv.blockCount - 1 - $0) }  // deliberately not 0, 1, 2...
    var out: [[Float]] = []
    var start = 0
    while start < tokens.count {
        let end = min(tokens.count, start + chunk)
        var batch = ForwardBatch()
        batch.append(sequence: Array(tokens[start..<end]), from: start, blockTable: table, wantLogits: false)
        batch.logitRows = Array(0..<(end - start))
        let logits = try model.forward(batch, kv: kv)
        let v = model.config.vocabSize
        out += (0..<(end - start)).map { Array(logits[$0 * v..<($0 + 1) * v]) }
        start = end
    }
    return out
}

/// Up to three sequences (at most 64 tokens each) in one step on one KV store with interleaved blocks, then
/// one decode step for all, give each sequence's logits alone to the bit.
func expectSameLogitsAloneOrBatched(_ model: LlamaModel, _ sequences: [[Int32]], kvType: KVType, label: String) throws {
    let alone = try sequences.map { try logitsOfAllPositions(model, $0, kvType: kvType) }
    let kv = KVStore(config: model.config, blockCount: 12, blockSize: 16, type: kvType)
    let tables: [[BlockID]] = [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, 11]]
    var batch = ForwardBatch()
    for (s, seq) in sequences.enumerated() { batch.append(sequence: seq, from: 0, blockTable: tables[s], wantLogits: false) }
    batch.logitRows = Array(0..<batch.tokenCount)
    let logits = try model.forward(batch, kv: kv)
    let v = model.config.vocabSize
    var row = 0
    for (s, seq) in sequences.enumerated() {
        for p in 0..<seq.count {
            #expect(Array(logits[row * v..<(row + 1) * v]) == alone[s][p], "\(label) sequence \(s) position \(p)")
            row += 1
        }
    }
    var decode = ForwardBatch()
    for (s, seq) in sequences.enumerated() { decode.append(sequence: [42], from: seq.count, blockTable: tables[s], wantLogits: true) }
    let next = try model.forward(decode, kv: kv)
    for (s, seq) in sequences.enumerated() {
        let single = try logitsOfAllPositions(model, seq + [42], kvType: kvType).last!
        #expect(Array(next[s * v..<(s + 1) * v]) == single, "\(label) decode of sequence \(s)")
    }
}

@Suite struct ForwardTests {
    @Test(arguments: ["f32", "q8_0"])
    func logitsMatchTheNumpyForwardPass(kind: String) throws {
        let golden = try #require(TinyGoldens.shared.models[kind])
        #expect(TinyGoldens.shared.format_version == 1, "regenerate with: python3 Tests/ModelRuntimeTests/Fixtures/make_tiny_models.py")
        let model = try loadTiny(kind)
        #expect(model.weights.tiedEmbeddings == golden.tied_embeddings)
        for prompt in golden.prompts {
            let logits = try logitsOfAllPositions(model, prompt.tokens)
            var worst: Float = 0
            for (p, row) in logits.enumerated() {
                for (a, b) in zip(row, prompt.logits[p]) { worst = max(worst, abs(a - b)) }
                // Where numpy's choice was clear, ours must be the same.
                if prompt.argmax_margins[p] > 2 * Double(golden.logits_abs_tolerance) {
                    #expect(Int32(row.indices.max { row[$0] < row[$1] }!) == prompt.argmax[p], "\(kind) \(prompt.name) position \(p)")
                }
            }
            #expect(worst <= golden.logits_abs_tolerance, "\(kind) \(prompt.name): max |logit diff| \(worst) > \(golden.logits_abs_tolerance)")
        }
    }

    @Test(arguments: ["f32", "q8_0"])
    func greedyContinuationMatchesNumpy(kind: String) throws {
        let golden = try #require(TinyGoldens.shared.models[kind]).greedy
        let model = try loadTiny(kind)
        var tokens = golden.prompt_tokens
        for _ in golden.tokens {
            let last = try #require(logitsOfAllPositions(model, tokens).last)
            tokens.append(Int32(last.indices.max { last[$0] < last[$1] }!))
        }
        #expect(Array(tokens.dropFirst(golden.prompt_tokens.count)) == golden.tokens)
    }

    static let sequences: [[Int32]] = [
        [1, 76, 105, 112, 112, 115, 40, 41, 200, 17, 3, 99, 120, 7, 250, 18, 19, 20],
        [1, 5, 6],
        (0..<37).map { Int32(($0 * 37 + 11) % 260) },
    ]

    @Test(arguments: ["f32", "q8_0"], [KVType.f32, .f16])  // Q8_0 KV: QuantizedKVTests (16-wide heads here)
    func sameLogitsAloneOrBatchedWithOthers(kind: String, kvType: KVType) throws {
        try expectSameLogitsAloneOrBatched(loadTiny(kind), Self.sequences, kvType: kvType, label: kind)
    }

    @Test(arguments: ["f32", "q8_0"], [KVType.f32, .f16])  // Q8_0 KV: QuantizedKVTests (16-wide heads here)
    func chunkedPrefillEqualsPrefillAtOnce(kind: String, kvType: KVType) throws {
        let model = try loadTiny(kind)
        let seq = Self.sequences[2]
        let once = try logitsOfAllPositions(model, seq, kvType: kvType)
        for chunk in [1, 5, 16] { #expect(try logitsOfAllPositions(model, seq, chunk: chunk, kvType: kvType) == once, "chunk \(chunk)") }
    }

    @Test(arguments: ["f32", "q8_0"], [KVType.f32, .f16])  // Q8_0 KV: QuantizedKVTests (16-wide heads here)
    func oneOrTwoThreadsGiveTheSameLogits(kind: String, kvType: KVType) throws {
        let one = try logitsOfAllPositions(loadTiny(kind, threads: 1), Self.sequences[0], kvType: kvType)
        let two = try logitsOfAllPositions(loadTiny(kind, threads: 2), Self.sequences[0], kvType: kvType)
        let three = try logitsOfAllPositions(loadTiny(kind, threads: 3), Self.sequences[0], kvType: kvType)
        #expect(one == two)
        #expect(one == three)
    }

    /// An f16 KV store rounds every cached key and value, and the queries that meet them (relative error up
    /// to 2^-11): the logits stay close to the f32 store's, within the numpy goldens' tolerance (with Q8_0, a
    /// small change flips some activation int8s and cascades, see make_tiny_models.py), and differ from them
    /// (it is really f16).
    @Test(arguments: ["f32", "q8_0"])
    func anF16StoreStaysCloseToF32(kind: String) throws {
        let tolerance: Float = kind == "f32" ? 1e-3 : 4e-2
        let model = try loadTiny(kind)
        for seq in Self.sequences {
            let exact = try logitsOfAllPositions(model, seq), half = try logitsOfAllPositions(model, seq, kvType: .f16)
            let largest = exact.joined().map(abs).max()!
            let worst = zip(exact.joined(), half.joined()).map { abs($0 - $1) }.max()!
            #expect(worst <= tolerance * largest, "\(kind): max |diff| \(worst), max |logit| \(largest)")
            if seq.count > 1 { #expect(worst > 0, "\(kind): an f16 store gave f32's exact logits") }
        }
    }

    @Test func positionsBeyondTheContextAreRefused() throws {
        let model = try loadTiny("q8_0")
        let kv = KVStore(config: model.config, blockCount: 10, blockSize: 16)
        var batch = ForwardBatch()
        batch.append(sequence: [5], from: model.config.contextLength, blockTable: Array(0..<10), wantLogits: true)
        #expect(throws: RuntimeError.contextExceeded(position: 128, contextLength: 128)) { try model.forward(batch, kv: kv) }
    }
}

@Suite struct LoadTests {
    /// Copies the tiny model, letting `edit` change its metadata and tensor plans.
    func rewrite(_ edit: (inout GGUFMetadata, inout [GGUFTensorPlan]) -> Void) throws -> (TemporaryDirectory, String) {
        let source = try GGUFFile(path: tinyModelPath("f32"))
        var metadata = source.metadata
        var plans = source.tensors.map { GGUFTensorPlan(name: $0.name, type: $0.type, dimensions: $0.dimensions) }
        edit(&metadata, &plans)
        let dir = try TemporaryDirectory()
        let path = dir.file("edited.gguf")
        try GGUFWriter.write(to: path, metadata: metadata, tensors: plans) { i in
            if let t = source.tensor(named: plans[i].name), t.byteCount == plans[i].byteCount { return Array(source.data(of: t)) }
            return [UInt8](repeating: 0, count: plans[i].byteCount)
        }
        return (dir, path)
    }

    func loadError(_ path: String) -> RuntimeError? {
        do { _ = try LlamaModel(path: path, threads: 1) } catch let e as RuntimeError { return e } catch { return nil }
        return nil
    }

    @Test func aMatrixOfTheWrongShapeIsNamed() throws {
        let (dir, path) = try rewrite { _, plans in
            let i = plans.firstIndex { $0.name == TensorName.attentionKey(1) }!
            plans[i].dimensions = [64, 16]
        }
        _ = dir
        #expect(loadError(path) == .badTensorShape(tensor: TensorName.attentionKey(1), expected: [64, 32], found: [64, 16]))
    }

    @Test func aMissingTensorIsNamed() throws {
        let (dir, path) = try rewrite { _, plans in plans.removeAll { $0.name == TensorName.feedForwardDown(0) } }
        _ = dir
        #expect(loadError(path) == .model(.missingTensor(TensorName.feedForwardDown(0))))
    }

    @Test func inconsistentHyperParametersAreNamed() throws {
        let (dir, path) = try rewrite { metadata, _ in metadata.set(GGUFKey.kvHeadCount("llama"), .uint32(3)) }
        _ = dir
        guard case .badHyperParameter(let key, "3", _)? = loadError(path) else { Issue.record("no error"); return }
        #expect(key == GGUFKey.kvHeadCount("llama"))
    }

    /// A file asking for absurd sizes (a 2^31-position context would trap converting the attention
    /// scratch's size to 32 bits) is refused by name before anything is allocated from it.
    @Test(arguments: [(GGUFKey.contextLength("llama"), 1 << 31), (GGUFKey.embeddingLength("llama"), 1 << 30),
                      (GGUFKey.feedForwardLength("llama"), 1 << 31), (GGUFKey.blockCount("llama"), 1 << 20)])
    func absurdSizesAreRefusedByName(key: String, value: Int) throws {
        let (dir, path) = try rewrite { metadata, _ in metadata.set(key, .uint32(UInt32(value))) }
        _ = dir
        let error = loadError(path)
        guard case .badHyperParameter(let named, "\(value)", let reason)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(named == key)
        #expect(reason.contains("refused before any allocation"))
    }

    @Test func anotherArchitectureIsRefused() throws {
        let (dir, path) = try rewrite { metadata, _ in metadata.set(GGUFKey.architecture, .string("mamba")) }
        _ = dir
        #expect(loadError(path) == .unsupportedArchitecture("mamba"))
    }
}

/// The attention plan alone: every (token, head) in exactly one tile of one thread, tiles within one
/// sequence and one KV head, and threads' shares of the cost within one token's cost of each other.
@Suite struct AttentionPlanTests {
    func check(_ batch: ForwardBatch, threads: Int, config c: ModelConfig) {
        let plan = AttentionPlan(batch: batch, config: c, threads: threads)
        let group = c.headCount / c.kvHeadCount
        var seen = Set<[Int]>()
        var costs: [Int] = []
        var next = 0
        for i in 0..<threads {
            let share = plan.share(thread: i, of: threads)
            #expect(share.lowerBound == next, "threads' shares are contiguous")
            next = share.upperBound
            var cost = 0
            for tile in plan.tiles[share] {
                let tokens = Int(tile.token_begin)..<Int(tile.token_begin + tile.token_count)
                let heads = Int(tile.head_begin)..<Int(tile.head_begin + tile.head_count)
                #expect(tokens.count <= AttentionPlan.tileTokens && !heads.isEmpty)
                #expect(Set(tokens.map { batch.sequenceIndex[$0] }).count == 1, "one sequence per tile")
                #expect(heads.lowerBound / group == (heads.upperBound - 1) / group, "one KV head per tile")
                for t in tokens {
                    for h in heads {
                        #expect(seen.insert([t, h]).inserted, "token \(t) head \(h) twice")
                        cost += batch.positions[t] + 1 + 16
                    }
                }
            }
            costs.append(cost)
        }
        #expect(next == plan.tiles.count)
        #expect(seen.count == batch.tokenCount * c.headCount)
        let largest = batch.positions.max()! + 1 + 16
        #expect(costs.max()! - costs.min()! <= 2 * largest, "costs \(costs)")
    }

    @Test func everyQueryOnceAndTheWorkShared() throws {
        let c = try loadTiny("q8_0").config
        var decode = ForwardBatch()
        for s in 0..<3 { decode.append(sequence: [7], from: 40 + s, blockTable: [0, 1, 2, 3], wantLogits: true) }
        var cachedPrefix = ForwardBatch()
        cachedPrefix.append(sequence: [1, 2, 3, 4, 5], from: 100, blockTable: Array(0..<8), wantLogits: true)
        var mixed = ForwardBatch()
        mixed.append(sequence: Array(repeating: 9, count: 21), from: 0, blockTable: [0, 1], wantLogits: true)
        mixed.append(sequence: [3], from: 60, blockTable: [2, 3, 4, 5], wantLogits: true)
        mixed.append(sequence: [4, 5, 6], from: 10, blockTable: [6], wantLogits: true)
        for batch in [decode, cachedPrefix, mixed] {
            for threads in [1, 2, 3] { check(batch, threads: threads, config: c) }
        }
    }
}

/// The packed weights file: written on the first load, mapped on later ones, rewritten when stale or
/// damaged, and replaced by a heap copy when it cannot be written; the logits are the same bits every way.
@Suite struct PackedWeightsFileTests {
    func copyOfTinyModel() throws -> (TemporaryDirectory, String) {
        let dir = try TemporaryDirectory()
        let path = dir.file("tiny.gguf")
        try FileManager.default.copyItem(atPath: tinyModelPath("q8_0"), toPath: path)
        return (dir, path)
    }

    func logits(_ model: LlamaModel) throws -> [[Float]] { try logitsOfAllPositions(model, [5, 80, 81, 200, 33, 7, 9, 120]) }

    @Test func isWrittenOnceThenMappedWithTheSameLogits() throws {
        let (dir, path) = try copyOfTinyModel()
        _ = dir
        let packed = WeightPacking.filePath(forModel: path)
        let inMemory = try LlamaModel(path: path, threads: 1, packing: .inMemory)
        #expect(inMemory.weights.source == .packedInMemory)
        #expect(inMemory.weights.layers[0].query.packed)
        let expected = try logits(inMemory)

        let first = try LlamaModel(path: path, threads: 1, packing: .file(packed))
        #expect(first.weights.source == .packedFile(path: packed, written: true))
        let second = try LlamaModel(path: path, threads: 1, packing: .file(packed))
        #expect(second.weights.source == .packedFile(path: packed, written: false))
        #expect(second.weights.layers[1].down.packed)
        // Views into the packed file's mapping, not into the GGUF's and not a heap copy.
        let mapping = second.weights.storage.file!.bytes
        let q = second.weights.layers[0].query.data
        #expect(q >= mapping.baseAddress! && q < mapping.baseAddress! + mapping.count)
        #expect(try logits(first) == expected)
        #expect(try logits(second) == expected)
        // The unpacked kernels agree (the packed layout is the same arithmetic as ggml's Q8_0 dot).
        #expect(try logits(LlamaModel(path: path, threads: 1, packing: .unpacked)) == expected)
    }

    @Test func aStaleOrDamagedFileIsRewritten() throws {
        let (dir, path) = try copyOfTinyModel()
        _ = dir
        let packed = WeightPacking.filePath(forModel: path)
        let expected = try logits(LlamaModel(path: path, threads: 1, packing: .file(packed)))

        // The model file changed (a new pull): its modification time no longer matches the stamp.
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: path)
        let afterTouch = try LlamaModel(path: path, threads: 1, packing: .file(packed))
        #expect(afterTouch.weights.source == .packedFile(path: packed, written: true))
        #expect(try logits(afterTouch) == expected)

        // A truncated file (a crash mid-copy, a full disk) is not read; it is written again.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: packed))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: packed))
        let afterDamage = try LlamaModel(path: path, threads: 1, packing: .file(packed))
        #expect(afterDamage.weights.source == .packedFile(path: packed, written: true))
        #expect(try logits(afterDamage) == expected)
    }

    /// A flipped byte in the packed data (bit-rot, tampering) is caught by its chunk's checksum and the file
    /// rewritten, so outputs never change: in a sampled chunk on every load, in any chunk with a full check.
    @Test func aFlippedByteIsCaughtByItsChecksum() throws {
        let (dir, path) = try copyOfTinyModel()
        _ = dir
        let packed = WeightPacking.filePath(forModel: path)
        let expected = try logits(LlamaModel(path: path, threads: 1, packing: .file(packed)))
        let file = try GGUFFile(path: packed)
        var chunkStarts: [Int] = []  // data offset of each checksummed chunk, in checksum order
        for t in file.tensors { chunkStarts += stride(from: t.offset, to: t.offset + t.byteCount, by: PackedWeightsFile.checksumChunk) }
        try #require(chunkStarts.count >= 2, "the test needs a chunk that a load does not sample")
        #expect(PackedWeightsFile.checksumsMatch(file, full: true))
        func flip(atDataOffset offset: Int) throws {
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: packed))
            defer { try? handle.close() }
            try handle.seek(toOffset: UInt64(file.dataOffset + offset))
            let byte = try handle.read(upToCount: 1)!
            try handle.seek(toOffset: UInt64(file.dataOffset + offset))
            try handle.write(contentsOf: [byte[0] ^ 0x10])
        }
        // Chunk 0 is sampled: an ordinary load finds the flip and rewrites the file.
        try flip(atDataOffset: chunkStarts[0] + 100)
        let sampled = try LlamaModel(path: path, threads: 1, packing: .file(packed))
        #expect(sampled.weights.source == .packedFile(path: packed, written: true))
        #expect(try logits(sampled) == expected)
        // Chunk 1 is not sampled: only the full check (`tally serve --verify`) finds it.
        try flip(atDataOffset: chunkStarts[1] + 10)
        #expect(try LlamaModel(path: path, threads: 1, packing: .file(packed)).weights.source == .packedFile(path: packed, written: false))
        let full = try LlamaModel(path: path, threads: 1, packing: .file(packed, fullCheck: true))
        #expect(full.weights.source == .packedFile(path: packed, written: true))
        #expect(try logits(full) == expected)
        #expect(PackedWeightsFile.checksumsMatch(try GGUFFile(path: packed), full: true))
    }

    @Test func anUnwritablePlaceFallsBackToMemory() throws {
        let (dir, path) = try copyOfTinyModel()
        let model = try LlamaModel(path: path, threads: 1, packing: .file(dir.file("no-such-directory/tiny.gguf.tally-packed")))
        #expect(model.weights.source == .packedInMemory)
        #expect(model.weights.layers[0].gate.packed)
    }
}

// Every C kernel, at every instruction-set level this CPU has, against the Swift references on odd sizes.

import CKernels
import Foundation
import Kernels
import Testing

/// Deterministic pseudo-random floats (tests must not depend on the system RNG).
struct TestRNG {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func float(_ range: ClosedRange<Float> = -1...1) -> Float {
        range.lowerBound + Float(next() >> 40) / Float(1 << 24) * (range.upperBound - range.lowerBound)
    }
    mutating func floats(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in float() * scale } }
}

/// Random Q8_0 weights [rows, k] with scales around 0.01.
func randomQ8Weights(rows: Int, k: Int, rng: inout TestRNG) -> [UInt8] {
    var bytes: [UInt8] = []
    for _ in 0..<rows * k / 32 {
        let d = Float16(0.005 + 0.01 * rng.float(0...1)).bitPattern
        bytes.append(UInt8(d & 0xFF)); bytes.append(UInt8(d >> 8))
        for _ in 0..<32 { bytes.append(UInt8(bitPattern: Int8(clamping: Int(rng.next() % 255) - 127))) }
    }
    return bytes
}

/// Runs `body` once per instruction-set level this CPU supports, forcing the kernels to it.
func forEachISA(_ body: (KernelISA) throws -> Void) rethrows {
    defer { KernelISA.force(.avx512VNNI) }
    for level in KernelISA.allCases where level.rawValue <= KernelISA.detected.rawValue {
        #expect(KernelISA.force(level) == level)
        try body(level)
    }
}

@Suite(.serialized) struct KernelTests {
    @Test func activationQuantizationMatchesTheReferenceExactly() {
        var rng = TestRNG(state: 1)
        for (rows, k) in [(1, 32), (3, 96), (5, 576), (2, 1536)] {
            var x = rng.floats(rows * k, scale: 3)
            x[5] = 0.5 * 127 / 127  // values that land on .5 after scaling exercise round-half-even
            if k >= 64 { for j in 32..<64 { x[j] = 0 } }  // an all-zero block
            let ref = (0..<rows).map { Reference.quantizeActivations(Array(x[$0 * k..<($0 + 1) * k]), k: k) }
            forEachISA { level in
                var xd = [Float](repeating: 0, count: rows * k / 32)
                var xq = [Int8](repeating: 0, count: rows * k)
                tally_quantize_rows_q8(x, Int32(rows), Int32(k), &xd, &xq)
                #expect(xd == ref.flatMap(\.scales), "\(level.name) rows \(rows) k \(k)")
                #expect(xq == ref.flatMap(\.quants), "\(level.name) rows \(rows) k \(k)")
            }
        }
    }

    @Test func q8GemmMatchesTheReferenceOnOddShapes() {
        var rng = TestRNG(state: 2)
        for (rows, k, cols) in [(1, 32, 1), (3, 96, 1), (5, 64, 3), (17, 576, 5), (130, 96, 7), (8, 1536, 2), (11, 96, 37), (6, 64, 70)] {
            let w = randomQ8Weights(rows: rows, k: k, rng: &rng)
            let x = rng.floats(cols * k)
            let q = (0..<cols).map { Reference.quantizeActivations(Array(x[$0 * k..<($0 + 1) * k]), k: k) }
            let scales = q.flatMap(\.scales), quants = q.flatMap(\.quants)
            let expected = Reference.gemmQ8(weights: w, rows: rows, k: k, scales: scales, quants: quants, cols: cols)
            forEachISA { level in
                // Whole range, and a range that starts and ends inside a 4-row group.
                for range in [0..<rows, (rows > 6 ? 1..<rows - 2 : 0..<rows)] {
                    var y = [Float](repeating: .nan, count: cols * rows)
                    tally_gemm_q8(w, Int32(k), Int32(range.lowerBound), Int32(range.upperBound), scales, quants, Int32(cols), &y, Int32(rows))
                    for c in 0..<cols {
                        for r in 0..<rows {
                            let got = y[c * rows + r], want = expected[c * rows + r]
                            if range.contains(r) {
                                #expect(abs(got - want) <= 1e-4 * max(1, abs(want)), "\(level.name) \(rows)x\(k)x\(cols) [\(r),\(c)] \(got) vs \(want)")
                            } else {
                                #expect(got.isNaN, "\(level.name): row \(r) outside \(range) was written")
                            }
                        }
                    }
                }
            }
        }
    }

    /// Every column count (the GEMV, the few-column row-streaming form, the tiles) sums a column's blocks in
    /// one order, so a column's outputs are bit-identical whatever other columns share the call: a token's
    /// logits do not depend on the batch (what exact speculative decoding and batch invariance rest on).
    @Test func aColumnsOutputIsBitIdenticalAloneOrWithOthers() {
        var rng = TestRNG(state: 5)
        let rows = 37, k = 576
        let w = randomQ8Weights(rows: rows, k: k, rng: &rng)
        for cols in [2, 3, 4, 5, 8, 9, 12, 33, 40, 65, 131] {  // past one and two of the blocked kernel's column blocks
            let x = rng.floats(cols * k)
            let q = (0..<cols).map { Reference.quantizeActivations(Array(x[$0 * k..<($0 + 1) * k]), k: k) }
            let scales = q.flatMap(\.scales), quants = q.flatMap(\.quants)
            forEachISA { level in
                var together = [Float](repeating: .nan, count: cols * rows)
                tally_gemm_q8(w, Int32(k), 0, Int32(rows), scales, quants, Int32(cols), &together, Int32(rows))
                for c in 0..<cols {
                    var alone = [Float](repeating: .nan, count: rows)
                    tally_gemm_q8(w, Int32(k), 0, Int32(rows), Array(scales[c * k / 32..<(c + 1) * k / 32]),
                                  Array(quants[c * k..<(c + 1) * k]), 1, &alone, Int32(rows))
                    #expect(Array(together[c * rows..<(c + 1) * rows]) == alone, "\(level.name): column \(c) of \(cols)")
                }
            }
        }
    }

    /// The packed layout: the product equals the reference (rows in 16-row groups, split at a group
    /// boundary), is bit-identical at every ISA level, for any column count (a column alone or among
    /// others) and to the unpacked AVX2 and VNNI kernels (the same arithmetic as ggml's Q8_0 dot), and a packed row
    /// reads back as the original row.
    @Test func packedQ8GemmMatchesTheReferenceAndIsBitIdenticalEverywhere() {
        var rng = TestRNG(state: 6)
        for (rows, k, cols) in [(16, 32, 1), (32, 96, 3), (48, 576, 9), (64, 1536, 17), (16, 64, 8), (32, 576, 45), (48, 96, 70)] {
            let w = randomQ8Weights(rows: rows, k: k, rng: &rng)
            var packed = [UInt8](repeating: 0, count: w.count)
            tally_q8p_pack(w, Int32(rows), Int32(k), &packed)
            #expect(packed != w)
            let x = rng.floats(cols * k, scale: 2)
            let q = (0..<cols).map { Reference.quantizeActivations(Array(x[$0 * k..<($0 + 1) * k]), k: k) }
            let scales = q.flatMap(\.scales), quants = q.flatMap(\.quants)
            var sums = [Int32](repeating: 0, count: cols * k / 4)
            tally_q8_block_sums(quants, Int32(cols), Int32(k), &sums)
            for j in 0..<cols * k / 4 {
                let sum: Int32 = quants[4 * j..<4 * j + 4].reduce(Int32(0)) { $0 + Int32($1) }
                #expect(sums[j] == -128 * sum)
            }
            let expected = Reference.gemmQ8(weights: w, rows: rows, k: k, scales: scales, quants: quants, cols: cols)
            var scalar = [Float](repeating: .nan, count: cols * rows)
            tally_gemm_q8p_scalar(packed, Int32(k), 0, Int32(rows), scales, quants, sums, Int32(cols), &scalar, Int32(rows))
            for i in 0..<cols * rows {
                #expect(abs(scalar[i] - expected[i]) <= 1e-4 * max(1, abs(expected[i])), "\(rows)x\(k)x\(cols) [\(i)] \(scalar[i]) vs \(expected[i])")
            }
            forEachISA { level in
                for range in [0..<rows, (rows > 16 ? 16..<rows : 0..<rows)] {
                    var y = [Float](repeating: .nan, count: cols * rows)
                    tally_gemm_q8p(packed, Int32(k), Int32(range.lowerBound), Int32(range.upperBound), scales, quants, sums, Int32(cols), &y, Int32(rows))
                    for c in 0..<cols {
                        for r in 0..<rows {
                            let got = y[c * rows + r]
                            if range.contains(r) {
                                #expect(got.bitPattern == scalar[c * rows + r].bitPattern, "\(level.name) \(rows)x\(k)x\(cols) [\(r),\(c)]")
                            } else {
                                #expect(got.isNaN, "\(level.name): row \(r) outside \(range) was written")
                            }
                        }
                    }
                    // The last column alone gives the same bits as among the others.
                    let last = cols - 1, nb = k / 32
                    let lastScales = Array(scales[(last * nb)...])
                    let lastQuants = Array(quants[(last * k)...])
                    let lastSums = Array(sums[(last * k / 4)...])
                    var one = [Float](repeating: .nan, count: rows)
                    tally_gemm_q8p(packed, Int32(k), 0, Int32(rows), lastScales, lastQuants, lastSums, 1, &one, Int32(rows))
                    let lastColumn: [Float] = Array(scalar[(last * rows)...])
                    #expect(one.map(\.bitPattern) == lastColumn.map(\.bitPattern), "\(level.name) one column")
                }
                if level != .scalar {  // the AVX2 kernels (GEMV, row-streaming, blocked) and the VNNI one
                    var unpacked = [Float](repeating: .nan, count: cols * rows)
                    tally_gemm_q8(w, Int32(k), 0, Int32(rows), scales, quants, Int32(cols), &unpacked, Int32(rows))
                    #expect(unpacked.map(\.bitPattern) == scalar.map(\.bitPattern), "\(rows)x\(k)x\(cols) against the unpacked kernel")
                }
            }
            var row = [Float](repeating: 0, count: k)
            for r in [0, rows - 1, rows / 2] {
                tally_q8p_row(packed, Int32(k), Int32(r), &row)
                var want = [Float](repeating: 0, count: k)
                for j in 0..<k {
                    let base: Int = (r * k / 32 + j / 32) * 34
                    let bits: UInt16 = UInt16(w[base]) | UInt16(w[base + 1]) << 8
                    let d = Float(Float16(bitPattern: bits))
                    want[j] = d * Float(Int8(bitPattern: w[base + 2 + j % 32]))
                }
                #expect(row == want, "row \(r) of \(rows)x\(k)")
            }
        }
    }

    @Test func f32AndF16GemmMatchDoubleSums() {
        var rng = TestRNG(state: 3)
        for (rows, k, cols) in [(1, 8, 1), (7, 13, 3), (33, 64, 2)] {
            let w = rng.floats(rows * k), x = rng.floats(cols * k)
            let w16 = w.map { Float16($0).bitPattern }
            forEachISA { level in
                for isF16 in [false, true] {
                    var y = [Float](repeating: 0, count: cols * rows)
                    if isF16 {
                        tally_gemm_f32(w16, 1, Int32(k), 0, Int32(rows), x, Int32(cols), &y, Int32(rows))
                    } else {
                        tally_gemm_f32(w, 0, Int32(k), 0, Int32(rows), x, Int32(cols), &y, Int32(rows))
                    }
                    let weights = isF16 ? w16.map { Float(Float16(bitPattern: $0)) } : w
                    let want = Reference.gemmF32(weights: weights, rows: rows, k: k, x: x, cols: cols)
                    for i in 0..<cols * rows { #expect(abs(Double(y[i]) - want[i]) < 1e-4, "\(level.name) f16=\(isF16)") }
                }
            }
        }
    }

    /// The vector kernel takes rows in pairs and columns in fours: an output is the same bits whether it was
    /// computed in a pair or alone, in a four or alone, and whatever row range a thread was given.
    @Test func f32GemmGivesTheSameBitsHoweverRowsAndColumnsAreGrouped() {
        var rng = TestRNG(state: 5)
        let rows = 7, k = 45, cols = 9
        let w = rng.floats(rows * k), x = rng.floats(cols * k)
        let w16 = w.map { Float16($0).bitPattern }
        for isF16 in [false, true] {
            func gemm(_ r0: Int, _ r1: Int, _ x: [Float], _ cols: Int) -> [Float] {
                var y = [Float](repeating: 0, count: cols * rows)
                if isF16 { tally_gemm_f32(w16, 1, Int32(k), Int32(r0), Int32(r1), x, Int32(cols), &y, Int32(rows)) }
                else { tally_gemm_f32(w, 0, Int32(k), Int32(r0), Int32(r1), x, Int32(cols), &y, Int32(rows)) }
                return y
            }
            let whole = gemm(0, rows, x, cols)
            for c in 0..<cols {
                let alone = gemm(0, rows, Array(x[c * k..<(c + 1) * k]), 1)
                #expect(Array(whole[c * rows..<(c + 1) * rows]) == alone, "column \(c) f16=\(isF16)")
            }
            var split = gemm(0, 3, x, cols)
            let rest = gemm(3, rows, x, cols)
            for c in 0..<cols { for r in 3..<rows { split[c * rows + r] = rest[c * rows + r] } }
            #expect(split == whole, "rows split at 3, f16=\(isF16)")
        }
    }

    /// Block size 16 exercises the 8-positions-at-a-time scoring, 4 the one-position path. Three cuts of
    /// the same work into tiles (every token and head alone; each run of a sequence's tokens with whole
    /// KV-head groups; uneven runs and single heads) give the same bits at each level, AVX2 and AVX-512
    /// give the same bits, and every level is within 1e-5 of the reference, for f32, f16 and Q8_0 caches
    /// (the reference reading the values the cache holds).
    @Test(arguments: [4, 16], [CacheValues.f32, .f16, .q8_0])
    func tiledAttentionMatchesTheReference(blockSize: Int, values: CacheValues) {
        var rng = TestRNG(state: 4)
        let heads = 6, kvHeads = 2, headDim = values == .q8_0 ? 32 : 16, blocks = 12, group = heads / kvHeads
        let width = kvHeads * headDim
        // The cache bytes, and the values as attention should see them (what the cache holds).
        func cache(_ x: [Float]) -> (bytes: [UInt8], values: [Float]) {
            switch values {
            case .f32: return (x.flatMap { withUnsafeBytes(of: $0, Array.init) }, x)
            case .f16: return (x.flatMap { withUnsafeBytes(of: Float16($0).bitPattern, Array.init) }, x.map { Float(Float16($0)) })
            case .q8_0: let q = Reference.q8_0Blocks(x); return (q, Reference.dequantizeQ8_0(q))
            }
        }
        let (kCache, kValues) = cache(rng.floats(blocks * blockSize * width))
        let (vCache, vValues) = cache(rng.floats(blocks * blockSize * width))
        // Tokens 0-4: consecutive positions of sequence 0; token 5: sequence 1; token 6: sequence 0 again.
        let tables: [[Int32]] = [[7, 2, 9, 0], [3, 11, 5]]
        let tokenSequence = [0, 0, 0, 0, 0, 1, 0]
        let lengths: [Int32] = blockSize == 4 ? [10, 11, 12, 13, 14, 9, 5] : [57, 58, 59, 60, 61, 41, 8]
        let tokens = tokenSequence.count
        let q = rng.floats(tokens * heads * headDim)
        func tile(_ t: Int, _ count: Int, _ h: Int, _ hc: Int) -> tally_attention_tile {
            tally_attention_tile(token_begin: Int32(t), token_count: Int32(count), head_begin: Int32(h), head_count: Int32(hc))
        }
        let cuts: [[tally_attention_tile]] = [
            (0..<tokens).flatMap { t in (0..<heads).map { tile(t, 1, $0, 1) } },
            [(0, 5), (5, 1), (6, 1)].flatMap { run in (0..<kvHeads).map { tile(run.0, run.1, $0 * group, group) } },
            [tile(0, 2, 0, 3), tile(0, 2, 3, 3), tile(2, 3, 0, 1), tile(2, 3, 1, 2), tile(2, 3, 3, 3),
             tile(5, 1, 0, 6 / 2), tile(5, 1, 3, 1), tile(5, 1, 4, 2), tile(6, 1, 0, 3), tile(6, 1, 3, 3)],
        ]
        let tablePointers = tables.map { t -> UnsafeMutablePointer<Int32> in
            let p = UnsafeMutablePointer<Int32>.allocate(capacity: t.count); p.initialize(from: t, count: t.count); return p
        }
        defer { tablePointers.forEach { $0.deallocate() } }
        let perToken: [UnsafePointer<Int32>?] = tokenSequence.map { UnsafePointer(tablePointers[$0]) }
        let scratchCount = tally_attention_scratch_floats(16, Int32(group), Int32(headDim), Int32(blockSize), 64)
        func run(_ tiles: [tally_attention_tile]) -> [Float] {
            var out = [Float](repeating: .nan, count: tokens * heads * headDim)
            var scratch = [Float](repeating: 0, count: scratchCount)
            perToken.withUnsafeBufferPointer { tp in
                lengths.withUnsafeBufferPointer { lp in
                    q.withUnsafeBufferPointer { qp in
                        kCache.withUnsafeBufferPointer { kp in
                            vCache.withUnsafeBufferPointer { vp in
                                out.withUnsafeMutableBufferPointer { op in
                                    var args = tally_attention_args(
                                        q: qp.baseAddress, k_cache: kp.baseAddress, v_cache: vp.baseAddress, block_tables: tp.baseAddress,
                                        context_lengths: lp.baseAddress, tokens: Int32(tokens), head_count: Int32(heads),
                                        kv_head_count: Int32(kvHeads), head_dim: Int32(headDim), block_size: Int32(blockSize),
                                        kv_type: values.rawValue, scale: 0.25, out: op.baseAddress)
                                    // Two calls, as two threads would make them.
                                    let half = Int32(tiles.count / 2)
                                    tally_attention(&args, tiles, 0, half, &scratch)
                                    tally_attention(&args, tiles, half, Int32(tiles.count), &scratch)
                                }
                            }
                        }
                    }
                }
            }
            return out
        }
        var outputs: [KernelISA: [Float]] = [:]
        forEachISA { level in
            let results = cuts.map(run)
            for (i, r) in results.enumerated().dropFirst() {
                #expect(r.map(\.bitPattern) == results[0].map(\.bitPattern), "\(level.name): cut \(i) differs from one tile per query")
            }
            let out = results[0]
            for t in 0..<tokens {
                let table = tables[tokenSequence[t]]
                for h in 0..<heads {
                    let kvh = h / group
                    func row(_ cache: [Float], _ j: Int) -> [Float] {
                        let base = (Int(table[j / blockSize]) * blockSize + j % blockSize) * width + kvh * headDim
                        return Array(cache[base..<base + headDim])
                    }
                    let n = Int(lengths[t])
                    let want = Reference.attention(
                        query: Array(q[(t * heads + h) * headDim..<(t * heads + h + 1) * headDim]),
                        keys: (0..<n).map { row(kValues, $0) }, values: (0..<n).map { row(vValues, $0) }, scale: 0.25)
                    let got = Array(out[(t * heads + h) * headDim..<(t * heads + h + 1) * headDim])
                    #expect(zip(got, want).allSatisfy { abs($0 - $1) < 1e-5 }, "\(level.name) \(values) token \(t) head \(h)")
                }
            }
            outputs[level] = out
        }
        if let wide = outputs[.avx512VNNI], let narrow = outputs[.avx2] {
            #expect(wide.map(\.bitPattern) == narrow.map(\.bitPattern))
        }
    }

    /// A Q8_0 KV cache's rows: the same blocks as the reference quantization at every level, including an
    /// all-zero block, ties and values that reach the scale exactly.
    @Test func q8_0RowConversionMatchesTheReference() {
        var rng = TestRNG(state: 11)
        var x = rng.floats(32 * 40).map { $0 * 3 }
        x += [Float](repeating: 0, count: 32)
        x += (0..<32).map { Float($0 - 16) * 0.5 }  // amax 8: x * 127/8 has ties
        x += (0..<32).map { $0 == 7 ? -1e-3 : Float($0) * 1e-6 }
        let want = Reference.q8_0Blocks(x)
        #expect(want.count == x.count / 32 * 34)
        forEachISA { level in
            var y = [UInt8](repeating: 0xAA, count: want.count)
            tally_f32_to_q8_0_row(x, &y, Int32(x.count))
            #expect(y == want, "\(level.name)")
        }
    }

    /// Rounding to f16 for the KV store: the F16C path equals the portable one on every bit, including
    /// halfway cases, subnormals, overflow to infinity and a tail shorter than 8.
    @Test func f16RowConversionMatchesThePortableRounding() {
        var rng = TestRNG(state: 9)
        var x = rng.floats(1000).map { $0 * 70000 } + rng.floats(101).map { $0 * 1e-6 }
        x += [0, -0.0, 65504, 65520, -65519.99, 1e-8, 5.96e-8, 2.98e-8, 1 + 1.0 / 2048, 1 + 3.0 / 2048, .infinity]
        let want = x.map { tally_f32_to_f16($0) }
        #expect(want.map { Float(Float16(bitPattern: $0)) } == x.map { Float(Float16($0)) })
        forEachISA { level in
            var y = [UInt16](repeating: 0, count: x.count)
            tally_f32_to_f16_row(x, &y, Int32(x.count))
            #expect(y == want, "\(level.name)")
        }
    }

    /// Rounding queries to f16 in place (for attention over an f16 cache): every ISA gives the nearest f16
    /// value as a float, the portable rounding's, on the same awkward values and a tail.
    @Test func f16RoundingInPlaceGivesTheNearestHalf() {
        var rng = TestRNG(state: 11)
        var x = rng.floats(203).map { $0 * 300 } + rng.floats(13).map { $0 * 1e-6 }
        x += [0, -0.0, 65504, 65520, 1e-8, 5.96e-8, 1 + 1.0 / 2048, 1 + 3.0 / 2048, -(1 + 1.0 / 2048)]
        let want = x.map { Float(Float16($0)).bitPattern }
        #expect(want != x.map(\.bitPattern))
        forEachISA { level in
            var y = x
            tally_f16_round_row(&y, Int32(y.count))
            #expect(y.map(\.bitPattern) == want, "\(level.name)")
        }
    }

    /// The vector exp behind softmax and SwiGLU, against Double exp: within 2.5e-7 relative (about 2 ulp)
    /// over the whole float range softmax and SiLU use, (almost) 0 below the underflow, exact at 0; an odd
    /// length for the tail.
    @Test func vectorExpIsWithinTwoUlp() {
        let x: [Float] = stride(from: -87.0, through: 88.0, by: 0.0137).map { Float($0) } + [0, -1e-8, 1e-8, -100, -1000]
        forEachISA { level in
            var y = [Float](repeating: .nan, count: x.count)
            tally_vexp(x, &y, Int32(x.count))
            for (xi, yi) in zip(x, y) {
                if xi < -87.4 {  // 0, or a denormal from libm on the scalar path
                    #expect(yi >= 0 && yi < 1e-37, "\(level.name) exp(\(xi)) = \(yi)")
                    continue
                }
                let want = Foundation.exp(Double(xi))
                #expect(abs(Double(yi) - want) <= 2.5e-7 * want, "\(level.name) exp(\(xi)) = \(yi), want \(want)")
            }
            #expect(y[x.count - 5] == 1)
        }
    }

    @Test func elementwiseOpsFollowTheirReferences() {
        var rng = TestRNG(state: 5)
        let n = 96
        let x = rng.floats(n, scale: 2), w = rng.floats(n)
        let heads = 2, headDim = 8, ropeDims = 6, position = 5
        let r0 = rng.floats(heads * headDim)
        forEachISA { level in
            var y = [Float](repeating: 0, count: n)
            rmsNorm(x, weight: w, into: &y, count: n, epsilon: 1e-5)
            for (got, want) in zip(y, Reference.rmsNorm(x, weight: w, epsilon: 1e-5)) { #expect(abs(Double(got) - want) < 1e-5, "\(level.name) rmsNorm") }

            var g = [Float](repeating: 0, count: n)
            swiglu(gate: x, up: w, into: &g, count: n)
            for (got, want) in zip(g, Reference.swiglu(gate: x, up: w)) { #expect(abs(Double(got) - want) < 1e-5, "\(level.name) swiglu") }

            // RoPE: adjacent pairs rotate by position * base^(-2i/d); the rope_dims..head_dim tail is untouched.
            var r = r0
            rope(&r, heads: heads, headDim: headDim, ropeDimensions: ropeDims, position: position, base: 10000)
            let want = Reference.rope(r0, headDim: headDim, ropeDimensions: ropeDims, position: position, base: 10000)
            for i in 0..<r.count {
                if i % headDim < ropeDims {
                    #expect(abs(Double(r[i]) - want[i]) < 1e-5, "\(level.name) rope [\(i)]")
                } else {
                    #expect(r[i] == r0[i], "\(level.name) rope tail [\(i)]")
                }
            }
            // In two steps over two ranges (as threads apply it to their shares): the same values.
            var cs = [Float](repeating: 0, count: ropeDims)
            ropeTable(position: position, dimensions: ropeDims, base: 10000, into: &cs)
            var split = r0
            applyRope(&split, values: 0..<6, headDim: headDim, ropeDimensions: ropeDims, table: cs)
            applyRope(&split, values: 6..<heads * headDim, headDim: headDim, ropeDimensions: ropeDims, table: cs)
            #expect(split == r, "\(level.name) rope in two steps")

            // NEOX halves with Llama 3 style frequency factors, and adjacent pairs with the same factors.
            let factors = (0..<ropeDims / 2).map { Float(1 + $0 % 3) * 1.5 }
            ropeTable(position: position, dimensions: ropeDims, base: 10000, factors: factors, into: &cs)
            var halves = r0
            applyRopeHalves(&halves, heads: 0..<heads, headDim: headDim, ropeDimensions: ropeDims, table: cs)
            let wantHalves = Reference.ropeHalves(r0, headDim: headDim, ropeDimensions: ropeDims, position: position, base: 10000, factors: factors)
            for i in 0..<r.count {
                if i % headDim < ropeDims {
                    #expect(abs(Double(halves[i]) - wantHalves[i]) < 1e-4, "\(level.name) rope halves [\(i)]")
                } else {
                    #expect(halves[i] == r0[i], "\(level.name) rope halves tail [\(i)]")
                }
            }
        }
    }

    @Test func halfConversionsMatchSwiftFloat16() {
        for bits in 0...UInt16.max where !Float16(bitPattern: bits).isNaN {
            #expect(tally_f16_to_f32(bits) == Float(Float16(bitPattern: bits)))
        }
        var rng = TestRNG(state: 6)
        var samples: [Float] = [0, -0, 1, 65504, 65520, 1e-8, 6.0e-8, 2.98e-8, 5.96e-8, .infinity, -.infinity]
        samples += (0..<20000).map { _ in rng.float() * Float(pow(2.0, Double(Int(rng.next() % 40) - 28))) }
        for f in samples { #expect(tally_f32_to_f16(f) == Float16(f).bitPattern, "\(f)") }
    }

    @Test func poolRunsEveryParticipantAndSharesCoverRanges() throws {
        for threads in [1, 2, 3] {
            let pool = ComputePool(threads: threads, spinMicroseconds: 50)
            let hits = UnsafeMutablePointer<Int>.allocate(capacity: threads)
            defer { hits.deallocate() }
            hits.initialize(repeating: 0, count: threads)
            for round in 0..<200 {
                pool.run { i, n in
                    #expect(n == threads)
                    hits[i] += 1
                }
                // Let the workers park now and then, so waking from a park is exercised.
                if round % 50 == 49 { usleep(2000) }
            }
            #expect((0..<threads).allSatisfy { hits[$0] == 200 })
        }
        for count in [0, 1, 5, 130, 1537] {
            for threads in 1...3 {
                let shares = (0..<threads).map { ComputePool.share(of: count, thread: $0, of: threads) }
                #expect(shares.map(\.count).reduce(0, +) == count)
                #expect(zip(shares, shares.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
                #expect(shares.dropLast().allSatisfy { $0.upperBound % 4 == 0 || $0.upperBound == count })
            }
        }
    }

    /// Claimed pieces cover each work list exactly once across the participants, in multiples of the
    /// granule, at least the minimum (but the last), larger first; every dispatch starts its lists anew.
    @Test func claimedPiecesCoverEachListOnce() {
        for threads in [1, 2, 3] {
            let pool = ComputePool(threads: threads, spinMicroseconds: 50)
            let lists = [(total: 576, granule: 4, minimum: 16), (total: 192, granule: 32, minimum: 64), (total: 1537, granule: 4, minimum: 1)]
            let claimed = UnsafeMutablePointer<[(list: Int, rows: Range<Int>)]>.allocate(capacity: threads)
            defer { claimed.deinitialize(count: threads); claimed.deallocate() }
            claimed.initialize(repeating: [], count: threads)
            for _ in 0..<3 {
                for i in 0..<threads { claimed[i] = [] }
                pool.run { i, _ in
                    for (list, l) in lists.enumerated() {
                        while let rows = pool.claim(list: list, of: l.total, granule: l.granule, minimum: l.minimum) {
                            claimed[i].append((list, rows))
                        }
                    }
                }
                let all = (0..<threads).flatMap { claimed[$0] }
                for (list, l) in lists.enumerated() {
                    let pieces = all.filter { $0.list == list }.map(\.rows).sorted { $0.lowerBound < $1.lowerBound }
                    #expect(pieces.first?.lowerBound == 0 && pieces.last?.upperBound == l.total)
                    #expect(zip(pieces, pieces.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
                    #expect(pieces.allSatisfy { $0.lowerBound % l.granule == 0 })
                    #expect(pieces.dropLast().allSatisfy { $0.count >= l.minimum })
                    #expect(zip(pieces, pieces.dropFirst()).dropLast().allSatisfy { $0.count >= $1.count })
                    #expect(threads == 1 ? pieces.count == 1 : pieces.count >= 2)
                }
            }
        }
    }

    /// A level forced by a test holds on its thread only: other threads (a model's pool workers, another
    /// test's forward pass) keep the detected level. A process-wide switch once flipped a real-model
    /// golden's near-tie while the kernel tests ran beside it.
    @Test func forcingALevelLeavesOtherThreadsAtTheDetectedLevel() {
        defer { KernelISA.force(.avx512VNNI) }
        #expect(KernelISA.force(.scalar) == .scalar)
        let pool = ComputePool(threads: 2, spinMicroseconds: 50)
        let levels = UnsafeMutablePointer<Int32>.allocate(capacity: 2)
        defer { levels.deallocate() }
        pool.run { i, _ in levels[i] = KernelISA.current.rawValue }
        #expect(levels[0] == KernelISA.scalar.rawValue)  // participant 0 is the calling thread
        #expect(levels[1] == KernelISA.detected.rawValue)
    }
}

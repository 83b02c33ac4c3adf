// The Swift face of the C kernels (CKernels): every entry point the model uses, with Swift counts, ranges
// and enums instead of Int32 casts. Buffers stay raw pointers: they are the mmap'd weights, the KV store and
// the step's workspace, owned by ModelRuntime. Each kernel's scalar reference is in Reference.swift.

import CKernels

// MARK: Matrix products

/// How a weight matrix's bytes are laid out; selects the product kernel.
package enum WeightLayout: Sendable, Equatable {
    /// GGUF Q8_0: rows of k/32 blocks { f16 scale; int8 q[32] }.
    case q8_0
    /// Q8_0 with rows interleaved 16 at a time (packQ8), read by the VNNI kernel.
    case q8_0Packed
    case f32
    case f16

    /// Q8_0 weights take int8-quantized activations; F32/F16 weights read the f32 rows as they are.
    package var takesQuantizedInput: Bool { self == .q8_0 || self == .q8_0Packed }
}

/// Activation rows quantized for Q8_0 products (quantizeRows), as ggml's quantize_row_q8_0 does.
package struct QuantizedRows {
    /// [rows, width / 32] one scale per 32-block
    package var scales: UnsafeMutablePointer<Float>
    /// [rows, width] int8 quants
    package var quants: UnsafeMutablePointer<Int8>
    /// [rows, width / 4] -128 * (sum of each 4 quants): the packed product's correction for w + 128
    package var sums: UnsafeMutablePointer<Int32>

    package init(scales: UnsafeMutablePointer<Float>, quants: UnsafeMutablePointer<Int8>, sums: UnsafeMutablePointer<Int32>) {
        self.scales = scales
        self.quants = quants
        self.sums = sums
    }
}

/// Quantizes rows `rows` of x [*, width] into the same rows of `out` (scales, quants and, when `blockSums`,
/// the block sums only the packed product reads). `width` is a multiple of 32.
package func quantizeRows(_ x: UnsafePointer<Float>, rows: Range<Int>, width: Int, into out: QuantizedRows, blockSums: Bool = true) {
    guard !rows.isEmpty else { return }
    let b = rows.lowerBound
    tally_quantize_rows_q8(x + b * width, Int32(rows.count), Int32(width), out.scales + b * width / 32, out.quants + b * width)
    if blockSums { tally_q8_block_sums(out.quants + b * width, Int32(rows.count), Int32(width), out.sums + b * width / 4) }
}

/// y[c, r] = dot(W row r, x row c) for W rows `rows` and x rows c in 0..<tokens; y has `outputStride` values
/// per row. W [*, columns] is read in `layout`; Q8_0 layouts read `quantized`, F32/F16 read `x`.
package func matmul(_ w: UnsafeRawPointer, layout: WeightLayout, columns: Int, rows: Range<Int>,
                    x: UnsafePointer<Float>, quantized: QuantizedRows, tokens: Int,
                    into y: UnsafeMutablePointer<Float>, outputStride: Int) {
    guard !rows.isEmpty else { return }
    let k = Int32(columns), r0 = Int32(rows.lowerBound), r1 = Int32(rows.upperBound), n = Int32(tokens), ldy = Int32(outputStride)
    switch layout {
    case .q8_0Packed: tally_gemm_q8p(w, k, r0, r1, quantized.scales, quantized.quants, quantized.sums, n, y, ldy)
    case .q8_0: tally_gemm_q8(w, k, r0, r1, quantized.scales, quantized.quants, n, y, ldy)
    case .f32: tally_gemm_f32(w, 0, k, r0, r1, x, n, y, ldy)
    case .f16: tally_gemm_f32(w, 1, k, r0, r1, x, n, y, ldy)
    }
}

/// Repacks a Q8_0 matrix [rows, columns] into `out` (same size) in the packed layout; rows % 16 == 0.
package func packQ8(_ w: UnsafeRawPointer, rows: Int, columns: Int, into out: UnsafeMutableRawPointer) {
    tally_q8p_pack(w, Int32(rows), Int32(columns), out)
}

/// Row `row` of a packed Q8_0 matrix as floats (`columns` values).
package func packedQ8Row(_ packed: UnsafeRawPointer, columns: Int, row: Int, into out: UnsafeMutablePointer<Float>) {
    tally_q8p_row(packed, Int32(columns), Int32(row), out)
}

// MARK: Element-wise

/// y = x / sqrt(mean(x²) + epsilon) * weight over `count` values (the sum of squares in double, as ggml).
package func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
                     count: Int, epsilon: Float) {
    tally_rmsnorm(x, weight, y, Int32(count), epsilon)
}

/// The cos/sin pairs of RoPE at `position` (`dimensions` floats): theta_i = position * base^(-2i/dimensions),
/// divided by `factors[i]` when given (Llama 3's `rope_freqs`, dimensions / 2 of them).
package func ropeTable(position: Int, dimensions: Int, base: Float, factors: [Float]? = nil, into table: UnsafeMutablePointer<Float>) {
    if let factors {
        factors.withUnsafeBufferPointer { tally_rope_table(Int32(position), Int32(dimensions), base, $0.baseAddress, table) }
    } else {
        tally_rope_table(Int32(position), Int32(dimensions), base, nil, table)
    }
}

/// Which values of a head RoPE pairs: adjacent ones (llama.cpp's "normal" layout; converters permute
/// Llama's Q/K rows so that this equals Hugging Face's rotation), or value i with value i + d/2 (NEOX;
/// Qwen's rows are not permuted).
package enum RopeStyle: Sendable, Equatable {
    case adjacentPairs
    case halves
}

/// Rotates whole heads [heads) of one token by `table` (ropeTable) in the NEOX layout (RopeStyle.halves).
package func applyRopeHalves(_ x: UnsafeMutablePointer<Float>, heads: Range<Int>, headDim: Int, ropeDimensions: Int,
                             table: UnsafePointer<Float>) {
    tally_rope_apply_halves(x, Int32(heads.lowerBound), Int32(heads.upperBound), Int32(headDim), Int32(ropeDimensions), table)
}

/// Rotates values `values` (begin even) of one token's heads by `table` (ropeTable), adjacent pairs
/// ("normal" layout); the first `ropeDimensions` values of each head rotate, the rest are left alone.
package func applyRope(_ x: UnsafeMutablePointer<Float>, values: Range<Int>, headDim: Int, ropeDimensions: Int,
                       table: UnsafePointer<Float>) {
    tally_rope_apply(x, Int32(values.lowerBound), Int32(values.upperBound), Int32(headDim), Int32(ropeDimensions), table)
}

/// RoPE in place on `heads` heads at `position`: ropeTable then applyRope over all of them.
package func rope(_ x: UnsafeMutablePointer<Float>, heads: Int, headDim: Int, ropeDimensions: Int, position: Int, base: Float) {
    tally_rope(x, Int32(heads), Int32(headDim), Int32(ropeDimensions), Int32(position), base)
}

/// out[i] = silu(gate[i]) * up[i], silu(z) = z / (1 + e^-z). `out` may be `gate`.
package func swiglu(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int) {
    tally_swiglu(gate, up, out, Int32(count))
}

/// y[i] = e^x[i], vectorised where the CPU allows (within 2 ulp of expf).
package func vectorExp(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
    tally_vexp(x, y, Int32(count))
}

// MARK: Half precision

/// IEEE half bits as a float.
package func halfToFloat(_ bits: UInt16) -> Float { tally_f16_to_f32(bits) }

/// A float rounded to the nearest IEEE half (ties to even), as bits.
package func floatToHalf(_ value: Float) -> UInt16 { tally_f32_to_f16(value) }

/// y[i] = half(x[i]) for `count` values (F16C where the CPU has it; the same bits either way).
package func convertToHalf(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<UInt16>, count: Int) {
    tally_f32_to_f16_row(x, y, Int32(count))
}

/// `count` values (a multiple of 32) to Q8_0 blocks at y, quantized as activations are.
package func convertToQ8_0(_ x: UnsafePointer<Float>, into y: UnsafeMutableRawPointer, count: Int) {
    tally_f32_to_q8_0_row(x, y, Int32(count))
}

/// x[i] = float(half(x[i])) in place: the nearest half value, as a float.
package func roundToHalf(_ x: UnsafeMutablePointer<Float>, count: Int) {
    tally_f16_round_row(x, Int32(count))
}

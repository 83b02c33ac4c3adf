// Scalar codecs of the tensor types: dequantize any readable type to f32, and quantize f32 to
// Q8_0 with ggml's reference rounding (quantize_row_q8_0_ref), bit for bit.

extension GGMLType {
    /// Dequantizes `elementCount` elements from `bytes` (at least byteCount(elements:) long) into `out`.
    /// Q4_1 computes `q*d + m` as two roundings (no fused multiply-add), as ggml's reference does.
    package func dequantize(_ bytes: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>) {
        let n = out.count
        switch self {
        case .f32:
            for i in 0..<n { out[i] = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .f16:
            for i in 0..<n { out[i] = halfToFloat(bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .bf16:
            for i in 0..<n { out[i] = Float(bitPattern: UInt32(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16) }
        case .q8_0:
            for b in 0..<n / 32 {
                let block = 34 * b
                let d = halfToFloat(bytes.loadUnaligned(fromByteOffset: block, as: UInt16.self))
                for j in 0..<32 { out[32 * b + j] = Float(Int8(bitPattern: bytes[block + 2 + j])) * d }
            }
        case .q4_0:
            for b in 0..<n / 32 {
                let block = 18 * b
                let d = halfToFloat(bytes.loadUnaligned(fromByteOffset: block, as: UInt16.self))
                for j in 0..<16 {
                    let q = bytes[block + 2 + j]
                    out[32 * b + j] = Float(Int(q & 0x0F) - 8) * d
                    out[32 * b + j + 16] = Float(Int(q >> 4) - 8) * d
                }
            }
        case .q4_1:
            for b in 0..<n / 32 {
                let block = 20 * b
                let d = halfToFloat(bytes.loadUnaligned(fromByteOffset: block, as: UInt16.self))
                let m = halfToFloat(bytes.loadUnaligned(fromByteOffset: block + 2, as: UInt16.self))
                for j in 0..<16 {
                    let q = bytes[block + 4 + j]
                    let lo = Float(q & 0x0F) * d
                    let hi = Float(q >> 4) * d
                    out[32 * b + j] = lo + m
                    out[32 * b + j + 16] = hi + m
                }
            }
        }
    }

    package func dequantize(_ bytes: UnsafeRawBufferPointer, count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            dequantize(bytes, into: buffer)
            initialized = count
        }
    }
}

package func halfToFloat(_ bits: UInt16) -> Float { Float(Float16(bitPattern: UInt16(littleEndian: bits))) }

/// ggml's quantize_row_q8_0_ref: per block of 32, d = max|x| / 127 stored as f16 (round to nearest
/// even), q = roundf(x * (1/d)) rounding half away from zero. `x.count` must be a multiple of 32.
package func quantizeQ8_0(_ x: UnsafeBufferPointer<Float>, into out: UnsafeMutableRawBufferPointer) {
    for b in 0..<x.count / 32 {
        var amax: Float = 0
        for j in 0..<32 { amax = max(amax, abs(x[32 * b + j])) }
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        out.storeBytes(of: Float16(d).bitPattern.littleEndian, toByteOffset: 34 * b, as: UInt16.self)
        for j in 0..<32 {
            out[34 * b + 2 + j] = UInt8(bitPattern: roundToInt8(x[32 * b + j] * id))
        }
    }
}

/// C's `(int8_t)roundf(v)` on x86-64: NaN and out-of-range values become 0 there (cvttss2si gives
/// 0x80000000, whose low byte is 0); Swift's Int8(v) would trap instead.
@inline(__always)
func roundToInt8(_ v: Float) -> Int8 {
    let r = v.rounded(.toNearestOrAwayFromZero)
    guard r >= -128, r <= 127 else { return 0 }
    return Int8(r)
}

package func quantizeQ8_0(_ x: [Float]) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: x.count / 32 * 34)
    x.withUnsafeBufferPointer { xs in out.withUnsafeMutableBytes { quantizeQ8_0(xs, into: $0) } }
    return out
}

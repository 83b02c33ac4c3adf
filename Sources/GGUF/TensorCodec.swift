// Scalar codecs of the tensor types: dequantize any readable type to f32, and quantize f32 to
// Q8_0 with ggml's reference rounding (quantize_row_q8_0_ref), bit for bit.

extension GGMLType {
    /// Dequantizes `out.count` elements (a multiple of blockSize) from `bytes` (at least
    /// byteCount(elements:) long) into `out`, bit for bit as gguf-py's `dequantize` (and ggml's reference):
    /// every product and sum is one f32 rounding in gguf-py's order, never a fused multiply-add; the
    /// K-quants scale a sub-block by `(d * scale) * q - dmin * min`.
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
            // {f16 d; i8 qs[32]}: x = q * d.
            for b in 0..<n / 32 {
                let block = 34 * b
                let d = halfToFloat(bytes.loadUnaligned(fromByteOffset: block, as: UInt16.self))
                for j in 0..<32 { out[32 * b + j] = Float(Int8(bitPattern: bytes[block + 2 + j])) * d }
            }
        case .q4_0:
            // {f16 d; u8 qs[16]}: byte j holds elements j (low nibble) and j+16, x = (q - 8) * d.
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
            // {f16 d, m; u8 qs[16]}: nibbles as Q4_0 (unsigned), x = q * d + m in two roundings.
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
        case .q5_0:
            // {f16 d; u32 qh; u8 qs[16]}: q = low nibble | bit j of qh << 4, x = (q - 16) * d.
            for b in 0..<n / 32 {
                let block = 22 * b
                let d = halfToFloat(bytes.loadUnaligned(fromByteOffset: block, as: UInt16.self))
                let qh = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: block + 2, as: UInt32.self))
                for j in 0..<16 {
                    let q = bytes[block + 6 + j]
                    let lo = Int(q & 0x0F) | Int((qh >> j) & 1) << 4
                    let hi = Int(q >> 4) | Int((qh >> (j + 16)) & 1) << 4
                    out[32 * b + j] = Float(lo - 16) * d
                    out[32 * b + j + 16] = Float(hi - 16) * d
                }
            }
        case .q5_1:
            // {f16 d, m; u32 qh; u8 qs[16]}: q as Q5_0 (unsigned), x = q * d + m in two roundings.
            for b in 0..<n / 32 {
                let block = 24 * b
                let d = halfToFloat(bytes.loadUnaligned(fromByteOffset: block, as: UInt16.self))
                let m = halfToFloat(bytes.loadUnaligned(fromByteOffset: block + 2, as: UInt16.self))
                let qh = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: block + 4, as: UInt32.self))
                for j in 0..<16 {
                    let q = bytes[block + 8 + j]
                    let lo = Float(UInt32(q & 0x0F) | ((qh >> j) & 1) << 4) * d
                    let hi = Float(UInt32(q >> 4) | ((qh >> (j + 16)) & 1) << 4) * d
                    out[32 * b + j] = lo + m
                    out[32 * b + j + 16] = hi + m
                }
            }
        case .iq4_nl:
            // {f16 d; u8 qs[16]}: each nibble indexes the non-linear table kvaluesIQ4NL, x = d * value.
            for b in 0..<n / 32 {
                let block = 18 * b
                let d = halfToFloat(bytes.loadUnaligned(fromByteOffset: block, as: UInt16.self))
                for j in 0..<16 {
                    let q = bytes[block + 2 + j]
                    out[32 * b + j] = d * Float(kvaluesIQ4NL[Int(q & 0x0F)])
                    out[32 * b + j + 16] = d * Float(kvaluesIQ4NL[Int(q >> 4)])
                }
            }
        case .q2_k:
            // {u8 scales[16]; u8 qs[64]; f16 d, dmin}: 16 sub-blocks of 16, scale byte = min << 4 | scale;
            // 2-bit q, byte l of each 32-byte half holds elements l, l+32, l+64, l+96 (shifts 0, 2, 4, 6).
            for b in 0..<n / 256 {
                let block = 84 * b, y = 256 * b
                let d = halfToFloat(bytes.loadUnaligned(fromByteOffset: block + 80, as: UInt16.self))
                let dmin = halfToFloat(bytes.loadUnaligned(fromByteOffset: block + 82, as: UInt16.self))
                for i in 0..<16 {
                    let sc = bytes[block + i]
                    let dl = d * Float(sc & 0x0F), ml = dmin * Float(sc >> 4)
                    for e in 16 * i..<16 * i + 16 {
                        let half = e / 128, shift = (e % 128) / 32, l = e % 32
                        let q = (bytes[block + 16 + 32 * half + l] >> (2 * shift)) & 3
                        let scaled = dl * Float(q)
                        out[y + e] = scaled - ml
                    }
                }
            }
        case .q3_k:
            // {u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d}: 16 sub-blocks of 16 with 6-bit scales - 32
            // (low nibbles in bytes 0-7, high 2-bit pairs in 8-11); q = 2 low bits as Q2_K, minus 4 where
            // bit e/32 of hmask[e % 32] is clear.
            for b in 0..<n / 256 {
                let block = 110 * b, y = 256 * b
                let d = halfToFloat(bytes.loadUnaligned(fromByteOffset: block + 108, as: UInt16.self))
                for i in 0..<16 {
                    let low = (bytes[block + 96 + i % 8] >> (4 * (i / 8))) & 0x0F
                    let high = (bytes[block + 104 + i % 4] >> (2 * (i / 4))) & 3
                    let dl = d * Float(Int(low | high << 4) - 32)
                    for e in 16 * i..<16 * i + 16 {
                        let half = e / 128, shift = (e % 128) / 32, l = e % 32
                        let q = Int((bytes[block + 32 + 32 * half + l] >> (2 * shift)) & 3)
                        let set = (bytes[block + l] >> (e / 32)) & 1 != 0
                        out[y + e] = dl * Float(q - (set ? 0 : 4))
                    }
                }
            }
        case .q4_k, .q5_k:
            // Q4_K {f16 d, dmin; u8 scales[12]; u8 qs[128]}: 8 sub-blocks of 32 with 6-bit scale and min
            // (scaleMinK4); byte l of each 32-byte chunk c holds element 64c + l (low nibble) and 64c + 32 + l.
            // Q5_K {f16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}: the same plus a fifth bit, bit e/32 of qh[e % 32].
            let fifthBit = self == .q5_k, size = fifthBit ? 176 : 144, qs = fifthBit ? 48 : 16
            for b in 0..<n / 256 {
                let block = size * b, y = 256 * b
                let d = halfToFloat(bytes.loadUnaligned(fromByteOffset: block, as: UInt16.self))
                let dmin = halfToFloat(bytes.loadUnaligned(fromByteOffset: block + 2, as: UInt16.self))
                for i in 0..<8 {
                    let (sc, mn) = scaleMinK4(bytes, at: block + 4, subBlock: i)
                    let dl = d * Float(sc), ml = dmin * Float(mn)
                    for l in 0..<32 {
                        let low = (bytes[block + qs + 32 * (i / 2) + l] >> (4 * (i % 2))) & 0x0F
                        let high = fifthBit ? (bytes[block + 16 + l] >> i) & 1 : 0
                        let scaled = dl * Float(low | high << 4)
                        out[y + 32 * i + l] = scaled - ml
                    }
                }
            }
        case .q6_k:
            // {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}: 16 sub-blocks of 16; per 128-element half,
            // ql byte l holds elements l (low nibble) and l+64 (high), byte l+32 holds l+32 and l+96;
            // qh byte l holds the top 2 bits of l, l+32, l+64, l+96; x = (d * scale) * (q - 32).
            for b in 0..<n / 256 {
                let block = 210 * b, y = 256 * b
                let d = halfToFloat(bytes.loadUnaligned(fromByteOffset: block + 208, as: UInt16.self))
                for i in 0..<16 {
                    let dl = d * Float(Int8(bitPattern: bytes[block + 192 + i]))
                    for e in 16 * i..<16 * i + 16 {
                        let half = e / 128, quarter = (e % 128) / 32, l = e % 32
                        let low = (bytes[block + 64 * half + 32 * (quarter % 2) + l] >> (4 * (quarter / 2))) & 0x0F
                        let high = (bytes[block + 128 + 32 * half + l] >> (2 * quarter)) & 3
                        out[y + e] = dl * Float(Int(low | high << 4) - 32)
                    }
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

/// IQ4_NL's 16 non-linear levels (ggml's kvalues_iq4nl).
let kvaluesIQ4NL: [Int8] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]

/// ggml's get_scale_min_k4: the 6-bit scale and min of sub-block j (0..<8) from Q4_K/Q5_K's 12 bytes at
/// `offset`. Sub-blocks 0-3 are the low 6 bits of bytes j and j+4; 4-7 take their low 4 bits from byte
/// j+4 (scale: low nibble, min: high nibble) and their top 2 from the top bits of bytes j-4 and j.
@inline(__always)
func scaleMinK4(_ bytes: UnsafeRawBufferPointer, at offset: Int, subBlock j: Int) -> (scale: UInt8, min: UInt8) {
    if j < 4 { return (bytes[offset + j] & 63, bytes[offset + j + 4] & 63) }
    let packed = bytes[offset + j + 4]
    return ((packed & 0x0F) | (bytes[offset + j - 4] >> 6) << 4, (packed >> 4) | (bytes[offset + j] >> 6) << 4)
}

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

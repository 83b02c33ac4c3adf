// Scalar references in Swift, written from the definitions and independent of the C code: the tests
// hold every C kernel (scalar and vector) to these.

import Foundation

package enum Reference {
    /// ggml's x86 quantize_row_q8_0: d = f16(amax/127), q = round-half-even(x * 127/amax).
    package static func quantizeActivations(_ x: [Float], k: Int) -> (scales: [Float], quants: [Int8]) {
        var scales: [Float] = [], quants: [Int8] = []
        for b in 0..<x.count / 32 {
            let block = x[32 * b..<32 * b + 32]
            let amax = block.map(abs).max()!
            scales.append(Float(Float16(amax / 127)))
            let id: Float = amax != 0 ? 127 / amax : 0
            for v in block { quants.append(Int8((v * id).rounded(.toNearestOrEven))) }
        }
        return (scales, quants)
    }

    /// Values as Q8_0 blocks (f16 scale little-endian, 32 int8), quantized as `quantizeActivations` does:
    /// what a Q8_0 KV cache stores.
    package static func q8_0Blocks(_ x: [Float]) -> [UInt8] {
        let (scales, quants) = quantizeActivations(x, k: x.count)
        return scales.indices.flatMap { b in
            withUnsafeBytes(of: Float16(scales[b]).bitPattern.littleEndian, Array.init) + quants[32 * b..<32 * b + 32].map { UInt8(bitPattern: $0) }
        }
    }

    /// The values Q8_0 blocks hold: scale * q.
    package static func dequantizeQ8_0(_ bytes: [UInt8]) -> [Float] {
        stride(from: 0, to: bytes.count, by: 34).flatMap { o in
            let d = Float(Float16(bitPattern: UInt16(bytes[o]) | UInt16(bytes[o + 1]) << 8))
            return (0..<32).map { d * Float(Int8(bitPattern: bytes[o + 2 + $0])) }
        }
    }

    /// y[c][r] = sum over blocks of f16 scale(W row r, block b) * xd[c][b] * sum_j qw * qx, in Double.
    package static func gemmQ8(weights: [UInt8], rows: Int, k: Int, scales: [Float], quants: [Int8], cols: Int) -> [Float] {
        var y = [Float](repeating: 0, count: rows * cols)
        let nb = k / 32
        for r in 0..<rows {
            for c in 0..<cols {
                var sum = 0.0
                for b in 0..<nb {
                    let base = (r * nb + b) * 34
                    let d = Float(Float16(bitPattern: UInt16(weights[base]) | UInt16(weights[base + 1]) << 8))
                    var isum = 0
                    for j in 0..<32 { isum += Int(Int8(bitPattern: weights[base + 2 + j])) * Int(quants[c * k + 32 * b + j]) }
                    sum += Double(d) * Double(scales[c * nb + b]) * Double(isum)
                }
                y[c * rows + r] = Float(sum)
            }
        }
        return y
    }

    /// Causal attention of one query head over keys/values given position by position, in Double.
    package static func attention(query: [Float], keys: [[Float]], values: [[Float]], scale: Float) -> [Float] {
        let scores = keys.map { k in Double(scale) * zip(query, k).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } }
        let m = scores.max()!
        let e = scores.map { Foundation.exp($0 - m) }
        let total = e.reduce(0, +)
        var out = [Double](repeating: 0, count: query.count)
        for (j, v) in values.enumerated() { for d in 0..<v.count { out[d] += e[j] / total * Double(v[d]) } }
        return out.map { Float($0) }
    }

    /// y[c][r] = dot(W row r, x column c) with W [rows, k] and x [cols, k] row-major, in Double.
    package static func gemmF32(weights w: [Float], rows: Int, k: Int, x: [Float], cols: Int) -> [Double] {
        var y = [Double](repeating: 0, count: rows * cols)
        for r in 0..<rows {
            for c in 0..<cols { y[c * rows + r] = (0..<k).reduce(0.0) { $0 + Double(w[r * k + $1]) * Double(x[c * k + $1]) } }
        }
        return y
    }

    /// y = x / sqrt(mean(x²) + eps) * weight, in Double.
    package static func rmsNorm(_ x: [Float], weight: [Float], epsilon: Float) -> [Double] {
        let rms = (x.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(x.count) + Double(epsilon)).squareRoot()
        return zip(x, weight).map { Double($0) / rms * Double($1) }
    }

    /// RoPE, adjacent pairs: pair i of each head (i < ropeDimensions / 2) rotates by
    /// position * base^(-2i / ropeDimensions); the rest of each head is unchanged. In Double.
    package static func rope(_ x: [Float], headDim: Int, ropeDimensions: Int, position: Int, base: Float) -> [Double] {
        var y = x.map(Double.init)
        for head in stride(from: 0, to: x.count, by: headDim) {
            for i in stride(from: 0, to: ropeDimensions, by: 2) {
                let theta = Double(position) * pow(Double(base), -Double(i) / Double(ropeDimensions))
                let a = Double(x[head + i]), b = Double(x[head + i + 1])
                y[head + i] = a * cos(theta) - b * sin(theta)
                y[head + i + 1] = a * sin(theta) + b * cos(theta)
            }
        }
        return y
    }

    /// RoPE, NEOX layout: value i of each head pairs with value i + ropeDimensions / 2 and rotates by
    /// position * base^(-2i / ropeDimensions) / factors[i] (factors default 1). In Double.
    package static func ropeHalves(_ x: [Float], headDim: Int, ropeDimensions: Int, position: Int, base: Float,
                                   factors: [Float]? = nil) -> [Double] {
        var y = x.map(Double.init)
        let half = ropeDimensions / 2
        for head in stride(from: 0, to: x.count, by: headDim) {
            for i in 0..<half {
                let theta = Double(position) * pow(Double(base), -Double(2 * i) / Double(ropeDimensions)) / Double(factors?[i] ?? 1)
                let a = Double(x[head + i]), b = Double(x[head + i + half])
                y[head + i] = a * cos(theta) - b * sin(theta)
                y[head + i + half] = a * sin(theta) + b * cos(theta)
            }
        }
        return y
    }

    /// out = silu(gate) * up, silu(z) = z / (1 + e^-z), in Double.
    package static func swiglu(gate: [Float], up: [Float]) -> [Double] {
        zip(gate, up).map { g, u in Double(g) / (1 + Foundation.exp(-Double(g))) * Double(u) }
    }
}

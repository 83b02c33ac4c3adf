// Helpers for the sampling tests: run the sampler on a copy of a logits array; logits from probabilities.

import Foundation
import Sampling

extension Sampler {
    mutating func sample(_ logits: [Float]) -> Int32 {
        var copy = logits
        return copy.withUnsafeMutableBufferPointer { sample($0) }
    }

    mutating func candidates(_ logits: [Float]) -> (ids: [Int32], probs: [Float]) {
        var copy = logits
        return copy.withUnsafeMutableBufferPointer { candidates($0) }
    }

    /// The logits after penalties (a greedy pass applies them in place and draws nothing).
    mutating func penalised(_ logits: [Float]) -> [Float] {
        var copy = logits
        _ = copy.withUnsafeMutableBufferPointer { candidates($0) }
        return copy
    }
}

/// ln p for each p: softmax of the result gives back p (when p sums to 1).
func logits(probabilities: [Double]) -> [Float] { probabilities.map { Float(log($0)) } }

/// `count` logits uniform in [-spread/2, spread/2) from a fixed stream.
func randomLogits(count: Int, seed: UInt64, spread: Double = 20) -> [Float] {
    var g = Xoshiro256StarStar(seed: seed)
    return (0..<count).map { _ in Float((g.nextUnitDouble() - 0.5) * spread) }
}

func isClose(_ a: [Float], _ b: [Double], tolerance: Double = 1e-5) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { abs(Double($0) - $1) <= tolerance }
}

// The per-request PRNG: SplitMix64 expands a 64-bit seed into xoshiro256** state, so one seed gives the
// same stream on every machine, with any batch composition or thread count (no global or shared RNG).

/// SplitMix64 (Steele, Lea, Flood 2014; reference: https://prng.di.unimi.it/splitmix64.c).
/// Used only to seed `Xoshiro256StarStar`, as its authors recommend.
package struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    package init(seed: UInt64) { state = seed }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// xoshiro256** 1.0 (Blackman, Vigna; reference: https://prng.di.unimi.it/xoshiro256starstar.c).
/// State is the first four outputs of `SplitMix64(seed:)`, which are never all zero (SplitMix64's
/// output function is a bijection of a counter, so four consecutive outputs are distinct).
package struct Xoshiro256StarStar: RandomNumberGenerator, Sendable {
    private var s0, s1, s2, s3: UInt64

    package init(seed: UInt64) {
        var expander = SplitMix64(seed: seed)
        s0 = expander.next()
        s1 = expander.next()
        s2 = expander.next()
        s3 = expander.next()
    }

    package mutating func next() -> UInt64 {
        let result = rotateLeft(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotateLeft(s3, 45)
        return result
    }

    /// One uniform Double in [0, 1): the top 53 bits of `next()` times 2^-53. This exact formula is part
    /// of the reproducibility contract; `Double.random(in:using:)` is not, since the stdlib may change it.
    package mutating func nextUnitDouble() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    @inline(__always)
    private func rotateLeft(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}

// The PRNG against vectors from an independent implementation, so a seed means the same stream
// everywhere and forever.

import Sampling
import Testing

/// Expected values come from this Python 3 transcription of the reference C (prng.di.unimi.it);
/// SplitMix64(0)'s first output 0xE220A8397B1DCDAF is also the widely published one.
///
///     M = 2**64 - 1
///     def splitmix(s):
///         while True:
///             s = (s + 0x9E3779B97F4A7C15) & M; z = s
///             z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
///             z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
///             yield z ^ (z >> 31)
///     rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & M
///     def xoshiro(seed):
///         g = splitmix(seed); s = [next(g) for _ in range(4)]
///         while True:
///             r = (rotl((s[1] * 5) & M, 7) * 9) & M; t = (s[1] << 17) & M
///             s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45)
///             yield r
@Suite struct RandomTests {
    @Test func splitMix64MatchesReference() {
        var g = SplitMix64(seed: 0)
        #expect([g.next(), g.next(), g.next()] == [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F])
    }

    @Test func xoshiroMatchesReference() {
        var zero = Xoshiro256StarStar(seed: 0)
        #expect([zero.next(), zero.next(), zero.next(), zero.next()]
            == [0x99EC_5F36_CB75_F2B4, 0xBF6E_1F78_4956_452A, 0x1A5F_849D_4933_E6E0, 0x6AA5_94F1_262D_2D2C])
        var answer = Xoshiro256StarStar(seed: 42)
        #expect([answer.next(), answer.next(), answer.next()] == [0x1578_0B2E_0C2E_C716, 0x6104_D986_6D11_3A7E, 0xAE17_5332_39E4_99A1])
    }

    @Test func unitDoubleIsTopFiftyThreeBits() {
        var g = Xoshiro256StarStar(seed: 42)
        // (0x15780B2E0C2EC716 >> 11) * 2^-53, computed in Python.
        #expect(g.nextUnitDouble() == 0.08386297105988216)
        #expect(g.nextUnitDouble() == 0.3789802506626686)
        for _ in 0..<10_000 {
            let u = g.nextUnitDouble()
            #expect(u >= 0 && u < 1)
        }
    }
}

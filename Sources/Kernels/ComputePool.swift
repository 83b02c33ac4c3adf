// The Swift face of the C compute pool: `run` executes a closure on every participant thread.
// Closures must be @Sendable and nonisolated (a closure isolated to the main actor and run on a worker
// thread traps in Swift 6's isolation check).

import CKernels
import Foundation

package final class ComputePool: @unchecked Sendable {
    private let pool: OpaquePointer
    package let threadCount: Int

    /// `threads` participants including the caller; workers spin `spinMicroseconds` before parking.
    package init(threads: Int = ProcessInfo.processInfo.activeProcessorCount, spinMicroseconds: Int = 1000) {
        threadCount = max(1, threads)
        pool = tally_pool_create(Int32(threadCount), Int32(spinMicroseconds))
    }

    deinit { tally_pool_destroy(pool) }

    /// Runs body(threadIndex, threadCount) on all participants; returns when every one is done.
    package func run(_ body: (Int, Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            var box = body
            withUnsafeMutablePointer(to: &box) { pointer in
                tally_pool_run(pool, { context, index, count in
                    let body = context!.assumingMemoryBound(to: ((Int, Int) -> Void).self).pointee
                    body(Int(index), Int(count))
                }, pointer)
            }
        }
    }

    /// Inside `run`: the next rows of work list `list` (0 ..< 8) of [0, total) for the calling participant,
    /// or nil when all have been handed out. Pieces shrink as the list empties (about remaining / (2 x
    /// threads), at least `minimum`), so a participant that runs slower, or starts later, takes fewer of
    /// them: no one waits long at the end of a dispatch. Boundaries fall on multiples of `granule`.
    package func claim(list: Int, of total: Int, granule: Int, minimum: Int) -> Range<Int>? {
        var end: Int32 = 0
        let begin = tally_pool_claim(pool, Int32(list), Int32(total), Int32(granule), Int32(minimum), &end)
        return begin < 0 ? nil : Int(begin)..<Int(end)
    }

    /// Splits [0, count) into one contiguous range per thread, boundaries on multiples of `granule`.
    package static func share(of count: Int, thread: Int, of threads: Int, granule: Int = 4) -> Range<Int> {
        let units = (count + granule - 1) / granule
        let begin = min(count, units * thread / threads * granule)
        let end = min(count, units * (thread + 1) / threads * granule)
        return begin..<end
    }
}

/// The instruction-set level the C kernels use.
package enum KernelISA: Int32, CaseIterable, Sendable {
    case scalar = 0, avx2 = 1, avx512VNNI = 2

    package static var detected: KernelISA { KernelISA(rawValue: tally_isa_detect()) ?? .scalar }
    package static var current: KernelISA { KernelISA(rawValue: tally_isa_current()) ?? .scalar }
    /// Forces a level on the calling thread only (clamped to what the CPU has); returns the level in force.
    @discardableResult
    package static func force(_ level: KernelISA) -> KernelISA { KernelISA(rawValue: tally_isa_force(level.rawValue)) ?? .scalar }
    package var name: String { String(cString: tally_isa_name(rawValue)) }
}

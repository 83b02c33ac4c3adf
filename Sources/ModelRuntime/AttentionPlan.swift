// How one step's attention is cut into tiles (Kernels' AttentionTile) and shared between threads.
// A tile is some consecutive tokens of one sequence (at most `tileTokens`) and some query heads of one
// KV head, run by one thread: it reads each K and V row once for all its queries, so a prefill chunk over a
// long cached prefix reads the prefix once per tile instead of once per token.
//
// The work is laid out one (token, query head) at a time, ordered by run of tokens, KV head, token, head,
// and dealt to threads in contiguous parts of about equal cost (a token's cost grows with its context).
// A thread's part of one run and KV head becomes at most three tiles: a partial first token, whole
// tokens, a partial last token. So 5 new tokens after a cached prefix split about evenly between two
// threads, and a lone decode token splits its 9 heads 4:5. Whatever the cut, each query gets the same bits.

import Kernels

struct AttentionPlan {
    static let tileTokens = 8
    private(set) var tiles: [AttentionTile] = []
    /// Thread i runs tiles firstTile[i]..<firstTile[i + 1].
    private var firstTile: [Int]

    init(batch: ForwardBatch, config c: ModelConfig, threads: Int) {
        precondition(Self.tileTokens <= AttentionTile.maxTokens)
        let n = batch.tokenCount, group = c.headCount / c.kvHeadCount
        // Runs of consecutive tokens of one sequence, up to tileTokens long.
        var runs: [Range<Int>] = []
        var t = 0
        while t < n {
            var e = t + 1
            while e < n, e - t < Self.tileTokens, batch.sequenceIndex[e] == batch.sequenceIndex[t] { e += 1 }
            runs.append(t..<e)
            t = e
        }
        // A (token, head) costs the positions it reads, plus a fixed part.
        func cost(_ t: Int) -> Int { batch.positions[t] + 1 + 16 }
        let total = max(1, (0..<n).reduce(0) { $0 + cost($1) } * c.headCount)
        firstTile = Array(repeating: 0, count: threads + 1)
        var before = 0, thread = 0
        for run in runs {
            for kvh in 0..<c.kvHeadCount {
                // Units of this run and KV head: index u = (t - run.lowerBound) * group + g.
                var segmentStart = 0
                for u in 0..<run.count * group {
                    let unitCost = cost(run.lowerBound + u / group)
                    let owner = min(threads - 1, (2 * before + unitCost) * threads / (2 * total))
                    before += unitCost
                    if owner != thread {
                        addTiles(run: run, kvHead: kvh, group: group, units: segmentStart..<u)
                        segmentStart = u
                        while thread < owner {
                            thread += 1
                            firstTile[thread] = tiles.count
                        }
                    }
                }
                addTiles(run: run, kvHead: kvh, group: group, units: segmentStart..<run.count * group)
            }
        }
        while thread < threads {
            thread += 1
            firstTile[thread] = tiles.count
        }
    }

    /// Tiles for units [a, b) of one run and KV head: a partial first token, whole tokens, a partial last.
    private mutating func addTiles(run: Range<Int>, kvHead: Int, group: Int, units: Range<Int>) {
        func add(_ token: Int, _ tokens: Int, _ head: Int, _ heads: Int) {
            let first = run.lowerBound + token, firstHead = kvHead * group + head
            tiles.append(AttentionTile(tokens: first..<first + tokens, heads: firstHead..<firstHead + heads))
        }
        var i = units.lowerBound
        let b = units.upperBound
        if i < b, i % group != 0 {
            let stop = min(b, (i / group + 1) * group)
            add(i / group, 1, i % group, stop - i)
            i = stop
        }
        let wholeEnd = b / group * group
        if i < wholeEnd {
            add(i / group, (wholeEnd - i) / group, 0, group)
            i = wholeEnd
        }
        if i < b { add(i / group, 1, 0, b - i) }
    }

    /// The tiles thread i of `count` runs (`count` is the thread count the plan was made for).
    func share(thread i: Int, of count: Int) -> Range<Int> {
        precondition(count == firstTile.count - 1, "an attention plan is made for one thread count")
        return firstTile[i]..<firstTile[i + 1]
    }
}

// The scheduler and the step, single-threaded: the Engine's thread is its only caller.
//
// Token-budget model (after vLLM v1): there is no prefill or decode phase. Each request has its tokens
// (prompt, then what it generated) and `numComputedTokens`, how many of them are in the KV store. A step
// gives every scheduled request some of its uncomputed tokens, at most `maxBatchTokens` in all: a
// running request asks for its next prefill chunk or its one new token; waiting requests are admitted
// first-come first-served while budget, `maxSeqs` and free blocks allow. A prefix-cache hit just starts
// a request with numComputedTokens > 0; preemption (when blocks run out, the newest running request
// gives its blocks back) resets it to 0 so it is recomputed later. When a request's tokens are all
// computed, its row has logits and it samples one new token.

import Foundation
import GGUF
import ModelRuntime
import Sampling

package struct EngineConfig: Sendable {
    /// Most tokens in one step (prefill chunks plus decode tokens).
    package var maxBatchTokens = 512
    /// Most requests running at once.
    package var maxSeqs = 16
    /// KV blocks in the pool, and positions per block.
    package var kvBlocks = 2048
    package var blockSize = EngineConfig.standardBlockSize
    /// How the KV store holds keys and values.
    package var kvType = KVType.default
    /// Most requests waiting; more get EngineError.queueFull.
    package var maxQueue = 256
    package var prefixCaching = true
    /// After this long with no request running or waiting, the engine hands the KV memory of blocks that hold
    /// no cached prefix back to the OS (nil: never), as Ollama's keep-alive unloads an idle model.
    package var idleRelease: Duration? = nil
    /// At that point the prefix cache keeps at most this many free blocks (the least recently used beyond
    /// it are forgotten and released too); nil: no limit.
    package var idlePrefixCacheBlocks: Int? = nil

    /// Speculative decoding by prompt lookup (llama.cpp's `lookup`, vLLM's `ngram`): a decoding request whose
    /// last tokens (up to `draftNgram` of them) occurred earlier in its prompt or output proposes the up to
    /// `draftTokens` tokens that followed there; one forward pass computes them all, and the request keeps
    /// those its sampler draws anyway, plus the token drawn after the last kept one. The logits of a position
    /// do not depend on how the batch is made up, and tokens are drawn in the same order as without drafts,
    /// so the output is exactly what it would be without speculation. 0 turns it off.
    package var draftTokens = 0
    package var draftNgram = 3
    /// Shortest run looked up: a single token recurs by chance too often in ordinary text to be worth a draft.
    package var draftMinNgram = 2

    /// Positions per KV block in every engine a command builds (EngineFactory); tests may choose others.
    package static let standardBlockSize = 16

    package init() {}
}

/// Microseconds from an injected clock, so tests of timings are exact.
package protocol EngineClock: Sendable { func nowMicros() -> Int64 }

package struct MonotonicClock: EngineClock {
    package init() {}
    package func nowMicros() -> Int64 { Int64(DispatchTime.now().uptimeNanoseconds / 1000) }
}

/// A request inside the engine.
final class Sequence {
    let request: EngineRequest
    let continuation: AsyncThrowingStream<EngineEvent, Error>.Continuation?
    var tokens: [TokenID]
    var generated = 0
    var numComputedTokens = 0
    var blockTable: [BlockID] = []
    /// Hashes of the leading full blocks already registered in the prefix cache.
    var blockHashes: [BlockHash] = []
    /// The parent of the first block's hash: the salt's root, or nil (unsalted).
    let cacheRoot: BlockHash?
    var sampler: Sampler
    var stats = RequestStats()
    let arrivalMicros: Int64
    var firstScheduledMicros: Int64?
    var firstTokenMicros: Int64?
    var lastTokenMicros: Int64?
    var busyMicros = 0.0
    var admittedOnce = false
    /// This step's prompt-lookup draft: tokens computed after the last one, kept only as far as sampling agrees.
    var draft: [TokenID] = []
    /// How long the next draft may be, and steps to wait before drafting again: drafts that keep failing
    /// (ordinary prose, where an earlier match rarely continues) back off, so they cost almost nothing there.
    var draftLimit = Int.max
    var draftCooldown = 0
    var draftFailures = 0
    /// With request.promptLogprobs: entry i scores prompt token i + 1, filled as prefill chunks compute.
    var promptLogprobs: [TokenLogprob?] = []
    var promptLogprobsSent = false
    /// With request.pooling: the sum of the pooled positions' hidden states so far (mean), or the state.
    var pooled: [Double] = []

    init(request: EngineRequest, continuation: AsyncThrowingStream<EngineEvent, Error>.Continuation?, arrivalMicros: Int64) {
        self.request = request
        self.continuation = continuation
        tokens = request.promptTokens
        sampler = Sampler(params: request.sampling)
        self.arrivalMicros = arrivalMicros
        cacheRoot = request.cacheSalt.map(BlockHash.init(salt:))
        stats.promptTokens = request.promptTokens.count
        stats.seed = sampler.seed
        if request.promptLogprobs != nil { promptLogprobs = Array(repeating: nil, count: request.promptTokens.count - 1) }
    }

    /// Whether the prefix cache may supply this request's first positions: not when their logits (prompt
    /// logprobs) or hidden states (mean or CLS pooling) are wanted, since a cached position computes neither.
    var usesPrefixCache: Bool {
        request.promptLogprobs == nil && (request.pooling == nil || request.pooling == .last)
    }

    /// Whether this step's positions start..<end include prompt positions whose logits score a prompt token.
    func scoresPrompt(from start: Int) -> Bool {
        request.promptLogprobs != nil && !promptLogprobsSent && start < request.promptTokens.count - 1
    }
}

package final class EngineCore {
    package let config: EngineConfig
    package let runner: ModelRunner
    package let pool: BlockPool
    let clock: EngineClock
    var waiting: [Sequence] = []
    var running: [Sequence] = []
    package private(set) var snapshotCounters = EngineSnapshot()

    package init(config: EngineConfig, runner: ModelRunner, clock: EngineClock = MonotonicClock()) {
        self.config = config
        self.runner = runner
        pool = BlockPool(blockCount: config.kvBlocks)
        self.clock = clock
    }

    package var hasWork: Bool { !waiting.isEmpty || !running.isEmpty }

    /// The idle release: trims the prefix cache to `config.idlePrefixCacheBlocks` and hands the memory of
    /// free blocks that hold no cached prefix back to the OS. Only between steps, with no work.
    @discardableResult
    package func releaseIdleMemory() -> (forgotten: Int, releasedBytes: Int) {
        guard !hasWork else { return (0, 0) }
        let forgotten = config.idlePrefixCacheBlocks.map { pool.trimFreeCached(to: $0) } ?? 0
        return (forgotten, runner.releaseKV(of: pool.freeUncachedBlocks))
    }
    package var waitingCount: Int { waiting.count }
    package var runningCount: Int { running.count }
    package var runningIDs: [RequestID] { running.map(\.request.id) }
    package var waitingIDs: [RequestID] { waiting.map(\.request.id) }
    package func blockTable(of id: RequestID) -> [BlockID]? { (running + waiting).first { $0.request.id == id }?.blockTable }

    /// Longest prompt a request may have: the context, and what the whole KV pool can hold.
    package var promptLimit: Int { min(runner.contextLength, config.kvBlocks * config.blockSize) - 1 }

    /// Refuses a request whose prompt is empty or longer than `promptLimit`. `BatchingEngine.submit` calls
    /// this too, so the caller hears of it at once rather than through the stream.
    package func check(_ request: EngineRequest) throws(EngineError) {
        guard !request.promptTokens.isEmpty else { throw .emptyPrompt }
        guard request.promptTokens.count <= promptLimit else { throw .promptTooLong(tokens: request.promptTokens.count, limit: promptLimit) }
    }

    package func add(_ request: EngineRequest, continuation: AsyncThrowingStream<EngineEvent, Error>.Continuation?) throws(EngineError) {
        try check(request)
        // The request may have waited in the Engine's inbox: its queue time counts from its arrival.
        let waitedMicros = (ContinuousClock.now - request.arrival).inMicros
        let seq = Sequence(request: request, continuation: continuation, arrivalMicros: clock.nowMicros() - max(0, waitedMicros))
        // Interactive requests queue ahead of batch lines (which queue last, in arrival order).
        if request.priority == .interactive, let firstBatch = waiting.firstIndex(where: { $0.request.priority == .batch }) {
            waiting.insert(seq, at: firstBatch)
        } else {
            waiting.append(seq)
        }
    }

    /// Drops a request wherever it is; its blocks are freed now. Returns whether it was found.
    @discardableResult
    package func abort(_ id: RequestID) -> Bool { end(id, .abort) }

    /// Ends a request as the caller decided (`.stop`: a stop string matched; `.abort`: cancelled); it gets
    /// `.finished` with its stats like any other finish, and its blocks are freed now.
    @discardableResult
    package func end(_ id: RequestID, _ reason: FinishReason) -> Bool {
        if let i = running.firstIndex(where: { $0.request.id == id }) {
            finish(running.remove(at: i), reason)
            return true
        }
        if let i = waiting.firstIndex(where: { $0.request.id == id }) {
            finish(waiting.remove(at: i), reason)
            return true
        }
        return false
    }

    package func snapshot() -> EngineSnapshot {
        var s = snapshotCounters
        s.running = running.count
        s.waiting = waiting.count
        s.kvBlocksUsed = pool.usedCount
        s.kvBlocksTotal = pool.blockCount
        return s
    }

    // MARK: Scheduling

    /// Gives `seq` blocks for positions < upTo; false (and nothing taken) if the pool has too few.
    private func ensureBlocks(_ seq: Sequence, upTo: Int) -> Bool {
        let needed = (upTo + config.blockSize - 1) / config.blockSize - seq.blockTable.count
        guard needed > 0 else { return true }
        guard pool.freeCount >= needed else { return false }
        for _ in 0..<needed { seq.blockTable.append(pool.allocate()!) }
        return true
    }

    /// Gives back every block (last first, so a shared prefix stays cached longest).
    private func freeBlocks(_ seq: Sequence) {
        pool.release(seq.blockTable.reversed())
        seq.blockTable = []
        seq.blockHashes = []
    }

    /// The newest running request gives its blocks back and waits at the front of the queue; its
    /// tokens so far (prompt and generated) are recomputed when it runs again.
    private func preempt(_ seq: Sequence) {
        freeBlocks(seq)
        seq.numComputedTokens = 0
        seq.pooled = []
        seq.stats.preemptions += 1
        snapshotCounters.preemptions += 1
        // First in its class: ahead of every waiting request, or a batch line ahead of the other batch lines.
        let front = seq.request.priority == .batch ? waiting.firstIndex { $0.request.priority == .batch } ?? waiting.count : 0
        waiting.insert(seq, at: front)
    }

    /// Looks up the longest cached prefix (leaving at least one token to compute, whose logits the request
    /// needs) and takes it: the full blocks it covers are shared, and where the next block matches only
    /// part of a cached block, that part's keys and values are copied into a new block of the request's
    /// own (so a prompt that differs mid-block recomputes only what differs). Returns the cached token count.
    private func applyPrefixCache(_ seq: Sequence) -> Int {
        guard config.prefixCaching else { return 0 }
        let bs = config.blockSize, last = seq.tokens.count - 1  // tokens before `last` may come from the cache
        var hashes: [BlockHash] = []
        var parent = seq.cacheRoot
        for b in 0..<(last / bs) {
            let h = BlockHash(parent: parent, tokens: seq.tokens[b * bs..<(b + 1) * bs])
            guard let block = pool.cachedBlock(h) else { break }
            pool.retain(block)
            seq.blockTable.append(block)
            hashes.append(h)
            parent = h
        }
        seq.blockHashes = hashes
        seq.numComputedTokens = hashes.count * bs
        let start = seq.numComputedTokens
        if start < last, let match = pool.longestPartialMatch(parent: parent, tokens: seq.tokens[start..<min(start + bs, last)]),
           let block = pool.allocate() {
            // allocate() may hand out the matched block itself (free and least recent): its first
            // positions are still there, and copyKV skips a copy onto itself.
            runner.copyKV(from: match.block, to: block, slots: match.count)
            seq.blockTable.append(block)
            seq.numComputedTokens += match.count
        }
        return seq.numComputedTokens
    }

    /// Decides this step's work: (request, number of new tokens) in batch order.
    func schedule() -> [(Sequence, Int)] {
        var budget = config.maxBatchTokens
        var scheduled: [(Sequence, Int)] = []
        var preempted = false
        // While any interactive request runs or waits, batch lines pause: they keep their blocks and compute
        // nothing, so interactive work never shares a step with them.
        let interactive = running.contains { $0.request.priority == .interactive } || waiting.contains { $0.request.priority == .interactive }
        var i = 0
        while i < running.count && budget > 0 {
            let seq = running[i]
            if interactive && seq.request.priority == .batch {
                i += 1
                continue
            }
            let n = min(seq.tokens.count - seq.numComputedTokens, budget)
            var ok = ensureBlocks(seq, upTo: seq.numComputedTokens + n)
            // The newest batch line not yet scheduled gives way first, then the newest request.
            while !ok, let v = running.indices.last(where: { $0 > i && running[$0].request.priority == .batch }) ?? running.indices.last {
                let victim = running.remove(at: v)
                preempt(victim)
                preempted = true
                if victim === seq { break }
                ok = ensureBlocks(seq, upTo: seq.numComputedTokens + n)
            }
            guard ok else { break }
            scheduled.append((seq, n))
            budget -= n
            i += 1
        }
        // Admit waiting requests in arrival order; none while blocks are short (we just preempted).
        while !preempted, budget > 0, let seq = waiting.first, !(interactive && seq.request.priority == .batch) {
            // A paused batch line gives its place (and below, its blocks) to a waiting interactive request.
            let batchLine = seq.request.priority == .interactive ? running.lastIndex { $0.request.priority == .batch } : nil
            if running.count >= config.maxSeqs {
                guard let batchLine else { break }
                preempt(running.remove(at: batchLine))
                continue
            }
            if seq.numComputedTokens == 0 && seq.blockTable.isEmpty && seq.usesPrefixCache {
                let cached = applyPrefixCache(seq)
                if !seq.admittedOnce {
                    seq.stats.cachedTokens = cached
                    snapshotCounters.prefixCacheQueriedTokens += seq.tokens.count
                    snapshotCounters.prefixCacheHitTokens += cached
                }
            }
            let n = min(seq.tokens.count - seq.numComputedTokens, budget)
            guard ensureBlocks(seq, upTo: seq.numComputedTokens + n) else {
                // Not now: give back what the prefix lookup took, so the blocks can be used or evicted.
                freeBlocks(seq)
                seq.numComputedTokens = 0
                guard let batchLine else { break }
                preempt(running.remove(at: batchLine))
                continue
            }
            seq.admittedOnce = true
            waiting.removeFirst()
            running.append(seq)
            scheduled.append((seq, n))
            budget -= n
        }
        // Drafts last, from what budget and free blocks are left: a draft never preempts or delays anyone.
        if config.draftTokens > 0 {
            for k in scheduled.indices where budget > 0 {
                let (seq, n) = scheduled[k]
                guard n == 1, seq.tokens.count - seq.numComputedTokens == 1, seq.request.promptLogprobs == nil else { continue }
                if seq.draftCooldown > 0 {
                    seq.draftCooldown -= 1
                    continue
                }
                let room = min(config.draftTokens, seq.draftLimit, budget, seq.request.maxTokens - seq.generated - 1,
                               runner.contextLength - seq.tokens.count - 1)
                guard room > 0 else { continue }
                let draft = Self.lookupDraft(seq.tokens, minNgram: config.draftMinNgram, maxNgram: config.draftNgram, count: room)
                guard !draft.isEmpty, ensureBlocks(seq, upTo: seq.tokens.count + draft.count) else { continue }
                seq.draft = draft
                scheduled[k].1 += draft.count
                budget -= draft.count
            }
        }
        return scheduled
    }

    /// Prompt lookup: the tokens that followed the latest earlier occurrence of the last n tokens (n from
    /// `maxNgram` down to `minNgram`), at most `count` of them; empty when there is none.
    static func lookupDraft(_ tokens: [TokenID], minNgram: Int = 1, maxNgram: Int, count: Int) -> [TokenID] {
        let total = tokens.count
        for n in stride(from: min(maxNgram, total - 1), through: max(1, minNgram), by: -1) {
            let tail = tokens[(total - n)...]
            var start = total - n - 1
            while start >= 0 {
                if tokens[start..<(start + n)].elementsEqual(tail) {
                    let from = start + n
                    return Array(tokens[from..<min(total, from + count)])
                }
                start -= 1
            }
        }
        return []
    }

    // MARK: The step

    /// One step: schedule, run the model, sample, emit. Returns the number of tokens computed.
    @discardableResult
    package func step() throws -> Int {
        let start = clock.nowMicros()
        let scheduled = schedule()
        guard !scheduled.isEmpty else { return 0 }
        var batch = ForwardBatch()
        var sampling: [(seq: Sequence, row: Int)] = []       // requests that draw a token, and their logits row
        var scoring: [(seq: Sequence, position: Int, row: Int)] = []  // prompt positions whose next token is scored
        var pooling: [Sequence] = []                          // the owner of each of batch.hiddenRows
        var embedded: [Sequence] = []                         // embedding requests whose prompt this step completes
        for (seq, n) in scheduled {
            if seq.firstScheduledMicros == nil { seq.firstScheduledMicros = start }
            let first = batch.tokenCount, from = seq.numComputedTokens, end = from + n - seq.draft.count
            batch.append(sequence: Array(seq.tokens[from..<end]) + seq.draft, from: from, blockTable: seq.blockTable, wantLogits: false)
            if let mode = seq.request.pooling {
                // Hidden states only, no logits: the LM head is most of a short prompt's work.
                let rows: Range<Int>
                switch mode {
                case .mean: rows = first..<batch.tokenCount
                case .cls: rows = from == 0 ? first..<first + 1 : first..<first
                case .last: rows = end == seq.tokens.count ? batch.tokenCount - 1..<batch.tokenCount : first..<first
                }
                for row in rows {
                    batch.hiddenRows.append(row)
                    pooling.append(seq)
                }
                if end == seq.tokens.count { embedded.append(seq) }
                continue
            }
            if seq.scoresPrompt(from: from) {
                for p in from..<min(end, seq.request.promptTokens.count - 1) {
                    scoring.append((seq, p, batch.logitRows.count))
                    batch.logitRows.append(first + p - from)
                }
            }
            if end == seq.tokens.count {
                // The last token's row, then each draft token's: consecutive rows the sampler reads in turn.
                sampling.append((seq, batch.logitRows.count))
                for j in 0...seq.draft.count { batch.logitRows.append(batch.tokenCount - 1 - seq.draft.count + j) }
            }
        }
        let (logits, hidden) = try runner.forwardStep(batch)
        snapshotCounters.steps += 1

        let now = clock.nowMicros()
        let total = Double(batch.tokenCount)
        for (seq, n) in scheduled {
            seq.numComputedTokens += n - seq.draft.count  // draft positions count once kept (below)
            seq.busyMicros += Double(now - start) * Double(n) / total
            registerFullBlocks(seq)
        }
        let v = runner.vocabSize
        scorePrompts(scoring, logits: logits)
        pool(hidden, into: pooling)
        for seq in embedded {
            seq.firstTokenMicros = now
            seq.lastTokenMicros = now
            seq.continuation?.yield(.embedding(Self.embedding(seq)))
            finishRunning(seq, .stop)
        }
        // A request that asks for no tokens (echo with max_tokens 0, to score its prompt) ends with its prefill.
        sampling.removeAll { entry in
            guard entry.seq.request.maxTokens == 0 else { return false }
            entry.seq.firstTokenMicros = now
            entry.seq.lastTokenMicros = now
            finishRunning(entry.seq, .length)
            return true
        }
        // Draw every request's token, on the compute threads: each request has its own sampler (and RNG),
        // so a token does not depend on which thread drew it. With 16 requests, drawing one by one from
        // the full vocabulary left the second core idle for a sixth of the step.
        // With a draft, a request draws from its rows in turn and stops at the first token that differs from
        // the draft (that token is still kept: it is what the model gives after the kept prefix).
        var picks = [[(token: TokenID, logprob: TokenLogprob?)]](repeating: [], count: sampling.count)
        logits.withUnsafeBufferPointer { all in
            picks.withUnsafeMutableBufferPointer { out in
                runner.forEach(sampling.count) { i in
                    let (seq, firstRow) = sampling[i]
                    for j in 0...seq.draft.count {
                        let row = firstRow + j
                        var rowLogits = Array(all[row * v..<(row + 1) * v])
                        // Log-probabilities are the model's own distribution: taken before ignoreEOS masks.
                        let wantLogprobs = seq.request.topLogprobs
                        let original = wantLogprobs != nil ? rowLogits : []
                        if seq.request.ignoreEOS { for id in seq.request.stopTokenIDs where Int(id) < v { rowLogits[Int(id)] = -.infinity } }
                        if let constraint = seq.request.constraint { rowLogits.withUnsafeMutableBufferPointer { constraint.mask($0) } }
                        let token = rowLogits.withUnsafeMutableBufferPointer { seq.sampler.sample($0) }
                        var logprob: TokenLogprob? = nil
                        if let top = wantLogprobs {
                            let lp = original.withUnsafeBufferPointer { Sampler.logProbabilities($0, chosen: token, top: top) }
                            logprob = TokenLogprob(logprob: lp.chosen, top: lp.top)
                        }
                        seq.sampler.accept(token)
                        out[i].append((token, logprob))
                        if let constraint = seq.request.constraint {
                            constraint.accept(token)
                            if constraint.isComplete { break }  // the object closed: nothing may follow
                        }
                        if j == seq.draft.count || token != seq.draft[j] { break }
                    }
                }
            }
        }
        for (i, (seq, _)) in sampling.enumerated() {
            let drafted = seq.draft.count, accepted = picks[i].count - 1
            seq.draft = []
            if drafted > 0 {
                seq.numComputedTokens += accepted  // the kept draft tokens' keys and values are in place
                // All kept: allow twice as many next time. Some kept: about as many as were right. None: one
                // token next time, after waiting 2, 4, 8... (at most 32) steps while failures continue.
                if accepted == drafted {
                    seq.draftLimit = min(config.draftTokens, drafted * 2)
                    seq.draftFailures = 0
                } else if accepted > 0 {
                    seq.draftLimit = accepted + 1
                    seq.draftFailures = 0
                } else {
                    seq.draftLimit = 1
                    seq.draftFailures += 1
                    seq.draftCooldown = min(32, 1 << seq.draftFailures)
                }
                seq.stats.draftTokens += drafted
                seq.stats.acceptedDraftTokens += accepted
                snapshotCounters.draftTokens += drafted
                snapshotCounters.acceptedDraftTokens += accepted
            }
            var finished = false
            for (k, (token, logprob)) in picks[i].enumerated() where !finished {
                seq.tokens.append(token)
                seq.generated += 1
                if seq.firstTokenMicros == nil { seq.firstTokenMicros = now }
                seq.lastTokenMicros = now
                seq.request.onToken?(token)
                seq.continuation?.yield(.token(token, logprob))
                if !seq.request.ignoreEOS && seq.request.stopTokenIDs.contains(token) {
                    finishRunning(seq, .stop)
                    finished = true
                } else if seq.request.constraint?.isComplete == true && k == picks[i].count - 1 {
                    finishRunning(seq, .stop)
                    finished = true
                } else if seq.generated >= seq.request.maxTokens || seq.tokens.count >= runner.contextLength {
                    finishRunning(seq, .length)
                    finished = true
                }
            }
            if drafted > 0 && !finished { registerFullBlocks(seq) }
        }
        return batch.tokenCount
    }

    /// Scores the prompt tokens this step computed logits for (on the compute threads, a row each), and
    /// sends a request its prompt log-probabilities once its whole prompt is computed.
    private func scorePrompts(_ scoring: [(seq: Sequence, position: Int, row: Int)], logits: [Float]) {
        guard !scoring.isEmpty else { return }
        let v = runner.vocabSize
        var scored = [TokenLogprob?](repeating: nil, count: scoring.count)
        logits.withUnsafeBufferPointer { all in
            scored.withUnsafeMutableBufferPointer { out in
                runner.forEach(scoring.count) { i in
                    let (seq, p, row) = scoring[i]
                    let lp = Sampler.logProbabilities(UnsafeBufferPointer(rebasing: all[row * v..<(row + 1) * v]),
                                                      chosen: seq.request.promptTokens[p + 1], top: seq.request.promptLogprobs ?? 0)
                    out[i] = TokenLogprob(logprob: lp.chosen, top: lp.top)
                }
            }
        }
        for (i, entry) in scoring.enumerated() { entry.seq.promptLogprobs[entry.position] = scored[i] }
        var sequences: [Sequence] = []
        for entry in scoring where !sequences.contains(where: { $0 === entry.seq }) { sequences.append(entry.seq) }
        for seq in sequences where seq.numComputedTokens >= seq.request.promptTokens.count - 1 {
            seq.promptLogprobsSent = true
            seq.continuation?.yield(.promptLogprobs(seq.promptLogprobs.map { $0! }))
        }
    }

    /// Adds each hidden row to its request's pool (sums in Double, so a mean does not depend on how the
    /// prompt was cut into steps beyond the last bits of a double).
    private func pool(_ hidden: [Float], into owners: [Sequence]) {
        guard !owners.isEmpty, !hidden.isEmpty else { return }  // a runner without hidden states: no vector
        let width = hidden.count / owners.count
        for (i, seq) in owners.enumerated() {
            if seq.pooled.isEmpty { seq.pooled = [Double](repeating: 0, count: width) }
            for j in 0..<width { seq.pooled[j] += Double(hidden[i * width + j]) }
        }
    }

    /// The request's vector: its pooled state (divided by the prompt length for a mean), L2-normalised as
    /// OpenAI's embeddings are. Empty if the runner gave no hidden states.
    static func embedding(_ seq: Sequence) -> [Float] {
        guard !seq.pooled.isEmpty else { return [] }
        let count = seq.request.pooling == .mean ? Double(seq.request.promptTokens.count) : 1
        let mean = seq.pooled.map { $0 / count }
        let norm = mean.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return mean.map { Float(norm > 0 ? $0 / norm : 0) }
    }

    /// Registers every newly full, computed block of `seq` in the prefix cache.
    private func registerFullBlocks(_ seq: Sequence) {
        guard config.prefixCaching else { return }
        let full = seq.numComputedTokens / config.blockSize
        while seq.blockHashes.count < full {
            let b = seq.blockHashes.count
            let parent = seq.blockHashes.last ?? seq.cacheRoot
            let h = BlockHash(parent: parent, tokens: seq.tokens[b * config.blockSize..<(b + 1) * config.blockSize])
            // Prompt blocks this request put into the cache: what APIs with cache-write prices bill as writes.
            if pool.register(seq.blockTable[b], hash: h, parent: parent, tokens: seq.tokens[b * config.blockSize..<(b + 1) * config.blockSize])
                && (b + 1) * config.blockSize <= seq.request.promptTokens.count {
                seq.stats.cacheWriteTokens += config.blockSize
            }
            seq.blockHashes.append(h)
        }
    }

    private func finishRunning(_ seq: Sequence, _ reason: FinishReason) {
        running.removeAll { $0 === seq }
        finish(seq, reason)
    }

    private func finish(_ seq: Sequence, _ reason: FinishReason) {
        freeBlocks(seq)
        var stats = seq.stats
        stats.generatedTokens = seq.generated
        let scheduled = seq.firstScheduledMicros ?? clock.nowMicros()
        stats.queueMicros = max(0, scheduled - seq.arrivalMicros)
        stats.prefillMicros = max(0, (seq.firstTokenMicros ?? scheduled) - scheduled)
        stats.decodeMicros = max(0, (seq.lastTokenMicros ?? scheduled) - (seq.firstTokenMicros ?? scheduled))
        stats.busyShareMicros = Int64(seq.busyMicros.rounded())
        seq.request.onFinish?(reason, stats)
        seq.continuation?.yield(.finished(reason, stats))
        seq.continuation?.finish()
    }
}

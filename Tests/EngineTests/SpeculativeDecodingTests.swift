// Prompt-lookup speculative decoding: drafts come from the latest earlier occurrence of the last tokens,
// and a request's output is token for token what it is without drafts, whether drafts are kept or not.

import GGUF
import Sampling
import Testing
@testable import Engine

@Suite struct SpeculativeDecodingTests {
    @Test func aDraftIsWhatFollowedTheLatestEarlierOccurrenceOfTheLastTokens() {
        #expect(EngineCore.lookupDraft([1, 2, 3, 9, 1, 2, 3], maxNgram: 3, count: 4) == [9, 1, 2, 3])
        #expect(EngineCore.lookupDraft([1, 2, 3, 9, 1, 2, 3], maxNgram: 3, count: 2) == [9, 1])
        #expect(EngineCore.lookupDraft([1, 2, 3, 4], maxNgram: 3, count: 4) == [])
        // Shorter runs when the longer ones never occurred; the latest occurrence wins.
        #expect(EngineCore.lookupDraft([5, 6, 7, 5], maxNgram: 3, count: 4) == [6, 7, 5])
        #expect(EngineCore.lookupDraft([5, 1, 5, 2, 5], maxNgram: 2, count: 1) == [2])
        #expect(EngineCore.lookupDraft([5, 6, 7, 5], minNgram: 2, maxNgram: 3, count: 4) == [])
    }

    func run(_ prompt: [TokenID], draft: Int, maxTokens: Int = 30, stop: Set<TokenID> = []) async throws -> (tokens: [TokenID], steps: Int, stats: RequestStats, reason: FinishReason?) {
        var config = EngineConfig()
        config.kvBlocks = 64
        config.blockSize = 4
        config.draftTokens = draft
        let core = EngineCore(config: config, runner: FakeRunner(), clock: ManualClock())
        let c = Collector()
        var request = greedyRequest("r", prompt, maxTokens: maxTokens)
        request.stopTokenIDs = stop
        try core.add(request, continuation: c.continuation)
        var steps = 0
        while core.hasWork && steps < 1000 { try core.step(); steps += 1 }
        c.continuation.finish()
        try await c.drain()
        #expect(core.pool.usedCount == 0)  // every block back, drafts' included
        return (c.tokens, steps, c.finish?.1 ?? RequestStats(), c.finish?.0)
    }

    /// The fake model's next token is the last one plus one: a prompt that counts up twice makes every
    /// draft right, so each step keeps the whole draft and one token more.
    @Test func keptDraftsGiveTheSameTokensInFewerSteps() async throws {
        let prompt = ids(0..<40, then: ids(0..<5))
        let plain = try await run(prompt, draft: 0)
        let drafted = try await run(prompt, draft: 4)
        #expect(drafted.tokens == plain.tokens && plain.tokens.count == 30)
        #expect(drafted.steps < plain.steps / 3)
        #expect(drafted.stats.draftTokens > 0 && drafted.stats.acceptedDraftTokens == drafted.stats.draftTokens)
    }

    /// Here the earlier occurrence is followed by tokens the model does not give: every draft is dropped at
    /// its first token, and the output is still the plain one.
    @Test func rejectedDraftsChangeNothing() async throws {
        let prompt: [TokenID] = [0, 1, 2, 3, 50, 51, 52, 0, 1, 2]
        let plain = try await run(prompt, draft: 0, maxTokens: 12)
        let drafted = try await run(prompt, draft: 4, maxTokens: 12)
        #expect(drafted.tokens == plain.tokens && plain.tokens.first == 3)
        #expect(drafted.stats.draftTokens == 4)  // [50, 51, 52, 0] after "1 2 3"; the model gives 4
        #expect(drafted.stats.acceptedDraftTokens == 0)
    }

    @Test func aStopTokenInsideAKeptDraftEndsThereAndMaxTokensHolds() async throws {
        let prompt = ids(0..<20, then: ids(0..<5))
        let plain = try await run(prompt, draft: 0, stop: [12])
        let drafted = try await run(prompt, draft: 8, stop: [12])
        #expect(drafted.tokens == plain.tokens && drafted.tokens.last == 12 && drafted.reason == .stop)
        let short = try await run(prompt, draft: 8, maxTokens: 3)
        #expect(short.tokens == [5, 6, 7] && short.reason == .length)
    }
}

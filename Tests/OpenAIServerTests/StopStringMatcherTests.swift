// The stop-string matcher alone, and the text pipeline (detokenizer -> matcher -> logprob alignment).

import Engine
import GGUF
import OpenAIServer
import Testing
import Tokenization

@Suite struct StopStringMatcherTests {
    /// Feeds fragments; returns what was emitted after each, the total, and whether it matched.
    private func run(_ stops: [String], _ fragments: [String]) -> (steps: [String], text: String, matched: Bool) {
        var matcher = StopStringMatcher(stops: stops)
        var steps: [String] = []
        for fragment in fragments {
            let (text, matched) = matcher.append(fragment)
            steps.append(text)
            if matched { return (steps, steps.joined(), true) }
        }
        steps.append(matcher.flush())
        return (steps, steps.joined(), false)
    }

    @Test func withoutStopsEverythingPassesAtOnce() {
        let r = run([], ["Hel", "lo"])
        #expect(r.steps == ["Hel", "lo", ""])
        #expect(!r.matched)
    }

    @Test func matchInsideOneFragmentTruncates() {
        let r = run(["STOP"], ["one STOP two"])
        #expect(r.text == "one ")
        #expect(r.matched)
    }

    @Test func matchAcrossFragmentsNeverLeaksAPrefix() {
        let r = run(["STOP"], ["one S", "T", "O", "P two"])
        #expect(r.steps == ["one ", "", "", ""])
        #expect(r.matched)
    }

    @Test func heldPrefixIsReleasedWhenItStopsMatching() {
        let r = run(["STOP"], ["a ST", "x", " b"])
        #expect(r.steps == ["a ", "STx", " b", ""])
        #expect(r.text == "a STx b")
        #expect(!r.matched)
    }

    @Test func heldTailIsFlushedAtTheEnd() {
        let r = run(["STOP"], ["end ST"])
        #expect(r.steps == ["end ", "ST"])
        #expect(!r.matched)
    }

    @Test func earliestOfSeveralStopsWins() {
        #expect(run(["world", "lo w"], ["hello world"]).text == "hel")
        #expect(run(["b", "abc"], ["xab", "c"]).text == "xa")
    }

    @Test func overlappingSelfPrefix() {
        let r = run(["aab"], ["a", "a", "a", "b", "c"])
        #expect(r.text == "a")
        #expect(r.matched)
        #expect(r.steps == ["", "", "a", ""])
    }

    @Test func emptyStopStringsAreIgnored() {
        #expect(run([""], ["abc"]).text == "abc")
    }

    @Test func matchesPerUnicodeScalar() {
        // "e" + combining acute arrives in two fragments; the stop is the decomposed sequence.
        let r = run(["e\u{301}"], ["caf", "e", "\u{301} au lait"])
        #expect(r.text == "caf")
        #expect(r.matched)
        #expect(run(["😀"], ["smile 😀 now"]).text == "smile ")
    }
}

@Suite struct TextPipelineTests {
    @Test func splitCharactersAreHeldUntilComplete() throws {
        let tokenizer = try Fixture.tokenizer()
        let text = "clef 𝄞 and 😀"
        let tokens = tokenizer.encode(text, parseSpecial: false)
        var pipeline = TextPipeline(tokenizer: tokenizer, stops: [], hiddenTokens: [])
        var out = ""
        for token in tokens {
            let delta = pipeline.append(token, logprob: nil)
            #expect(!delta.text.contains("\u{FFFD}"))
            out += delta.text
        }
        out += pipeline.finish().text
        #expect(out == text)
    }

    @Test func logprobsFollowTheirTextAndStopAtTheCut() throws {
        let tokenizer = try Fixture.tokenizer()
        let text = "The capital of France is Paris."
        let tokens = tokenizer.encode(text, parseSpecial: false)
        var pipeline = TextPipeline(tokenizer: tokenizer, stops: ["France"], hiddenTokens: [])
        var released: [TokenLogprobEntry] = []
        var out = ""
        for token in tokens {
            let delta = pipeline.append(token, logprob: TokenLogprob(logprob: -1, top: []))
            out += delta.text
            released += delta.logprobs
            // Every released entry's text is already out.
            for entry in released { #expect(entry.textOffset <= out.unicodeScalars.count) }
            if delta.stopped { break }
        }
        #expect(out == "The capital of ")
        #expect(pipeline.finished)
        // Kept: the tokens whose text starts before the cut (" France" starts at the space before it).
        let cut = "The capital of ".unicodeScalars.count
        let expectedCount = tokens.indices.filter { tokenizer.decode(Array(tokens[..<$0])).unicodeScalars.count < cut }.count
        #expect(released.count == expectedCount)
        #expect(released.map(\.token) == Array(tokens.prefix(released.count)))
    }

    @Test func endOfGenerationTokenIsHiddenFromLogprobs() throws {
        let tokenizer = try Fixture.tokenizer()
        let eos = try #require(tokenizer.eosTokenID)
        var pipeline = TextPipeline(tokenizer: tokenizer, stops: [], hiddenTokens: tokenizer.endOfGenerationIDs)
        var entries: [TokenLogprobEntry] = []
        for token in tokenizer.encode("Hi", parseSpecial: false) + [eos] {
            entries += pipeline.append(token, logprob: TokenLogprob(logprob: -1, top: [])).logprobs
        }
        let tail = pipeline.finish()
        entries += tail.logprobs
        #expect(!entries.contains { $0.token == eos })
        #expect(!tail.text.contains("<|im_end|>"))
    }
}

// Generated tokens -> response text for one choice: streaming detokenizer (never splits a UTF-8
// character) -> stop-string matcher (never leaks a partial stop string). Streaming and non-streaming
// responses both run this, so the streamed deltas concatenate to exactly the non-streamed text.
//
// Log-probabilities ride along with the text they produced: each token records the range of
// detokenized text it added (in Unicode scalars), and is released once the matcher has released all of
// that text. On a stop-string match, tokens whose text starts before the cut are kept, the rest dropped.

import Engine
import GGUF
import Tokenization

/// One token's log-probability, ready for either endpoint's logprobs format: a generated token's, or with
/// `echo` a prompt token's (the first prompt token has none: nothing precedes it).
package struct TokenLogprobEntry: Sendable, Equatable {
    package var token: TokenID
    package var logprob: Float?
    package var top: [TopEntry]?
    /// Offset of the token's text in the choice's generated text, in Unicode scalars (a prompt token's: in
    /// the echoed prompt, which starts the choice's text).
    package var textOffset: Int
    package var fromPrompt = false

    package struct TopEntry: Sendable, Equatable {
        package var token: TokenID
        package var logprob: Float
    }
}

/// What one step of the pipeline released.
package struct TextDelta: Sendable, Equatable {
    package var text = ""
    package var logprobs: [TokenLogprobEntry] = []
    /// A stop string matched: the generation is over and the engine stream must be ended.
    package var stopped = false

    package var isEmpty: Bool { text.isEmpty && logprobs.isEmpty }
}

package struct TextPipeline: Sendable {
    private var detokenizer: StreamingDetokenizer
    private var matcher: StopStringMatcher
    /// Tokens left out of logprobs: the end-of-generation token that ends the text is not part of it.
    private let hiddenTokens: Set<TokenID>
    private var pending: [(entry: TokenLogprobEntry, end: Int)] = []
    /// Scalars produced by the detokenizer so far, and released by the matcher so far.
    private var producedScalars = 0
    private var releasedScalars = 0
    package private(set) var finished = false

    package init(tokenizer: Tokenizer, stops: [String], hiddenTokens: Set<TokenID>) {
        detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        matcher = StopStringMatcher(stops: stops)
        self.hiddenTokens = hiddenTokens
    }

    package mutating func append(_ token: TokenID, logprob: TokenLogprob?) -> TextDelta {
        precondition(!finished, "token after the text ended")
        let fragment = detokenizer.append(token)
        let start = producedScalars
        producedScalars += fragment.unicodeScalars.count
        if let logprob, !hiddenTokens.contains(token) {
            let entry = TokenLogprobEntry(token: token, logprob: logprob.logprob,
                                          top: logprob.top.map { .init(token: $0.token, logprob: $0.logprob) },
                                          textOffset: start)
            pending.append((entry, producedScalars))
        }
        return release(matcher.append(fragment))
    }

    /// The end of generation: whatever the detokenizer and matcher still hold.
    package mutating func finish() -> TextDelta {
        if finished { return TextDelta() }
        var delta = release(matcher.append(detokenizer.flush()))
        if !delta.stopped {
            let tail = matcher.flush()
            releasedScalars += tail.unicodeScalars.count
            delta.text += tail
            delta.logprobs += pending.map { $0.entry }
            pending.removeAll()
            finished = true
        }
        return delta
    }

    private mutating func release(_ step: (text: String, matched: Bool)) -> TextDelta {
        releasedScalars += step.text.unicodeScalars.count
        var delta = TextDelta(text: step.text)
        if step.matched {
            // The output ends at `releasedScalars`: keep tokens that contributed any text before it.
            delta.logprobs = pending.filter { $0.entry.textOffset < releasedScalars || $0.end <= releasedScalars }.map { $0.entry }
            pending.removeAll()
            delta.stopped = true
            finished = true
        } else {
            let ready = pending.prefix { $0.end <= releasedScalars }
            delta.logprobs = ready.map { $0.entry }
            pending.removeFirst(ready.count)
        }
        return delta
    }
}

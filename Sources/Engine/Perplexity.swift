// Perplexity of a token stream, the way a quantization is judged: the stream is read in windows of
// `context` tokens that overlap by half, and each window scores only its second half, so every scored
// token is predicted from at least context/2 tokens before it (llama.cpp's llama-perplexity scores the
// second half of each window too, but its windows do not overlap, so it scores half the text). Tokens
// before the first window's second half are context only. Each window is one prefill from position 0.

import Foundation
import GGUF
import ModelRuntime

package struct PerplexityWindows: Sendable, Equatable {
    package let context: Int
    package let tokenCount: Int

    package init(context: Int, tokenCount: Int) {
        self.context = context
        self.tokenCount = tokenCount
    }

    /// Tokens each window scores, and how far windows advance.
    package var stride: Int { context / 2 }
    /// Whole windows in the stream (a shorter tail is left out).
    package var count: Int { tokenCount < context ? 0 : (tokenCount - context) / stride + 1 }
    /// Window w's tokens.
    package func range(_ w: Int) -> Range<Int> { w * stride..<w * stride + context }
    /// Positions in a window whose logits are scored: position p predicts the window's token p + 1.
    package var scoredPositions: Range<Int> { context - stride - 1..<context - 1 }
    package var scoredTokenCount: Int { count * stride }
}

package struct PerplexityResult: Sendable {
    package var scoredTokens = 0
    /// Sum of -log p(actual next token), in nats.
    package var negativeLogLikelihood = 0.0
    package var perplexity: Double { exp(negativeLogLikelihood / Double(max(scoredTokens, 1))) }
}

package enum Perplexity {
    /// Runs every window of `tokens` through `model` with a KV store of `kvType` and scores it. For each
    /// window `onWindow(w, targets, logits)` gets the scored rows' logits ([stride, vocab], row-major) and the
    /// tokens they predict, for callers that compare distributions (bench/accuracy).
    package static func run(model: LlamaModel, tokens: [TokenID], context: Int, kvType: KVType,
                            onWindow: (Int, ArraySlice<TokenID>, [Float]) throws -> Void = { _, _, _ in }) throws -> PerplexityResult {
        let windows = PerplexityWindows(context: context, tokenCount: tokens.count)
        let blockSize = EngineConfig.standardBlockSize
        try kvType.check(for: model.config)
        let kv = KVStore(config: model.config, blockCount: (context + blockSize - 1) / blockSize, blockSize: blockSize, type: kvType)
        let table = (0..<kv.blockCount).map { BlockID($0) }
        let v = model.config.vocabSize
        var result = PerplexityResult()
        for w in 0..<windows.count {
            let range = windows.range(w)
            var batch = ForwardBatch()
            batch.append(sequence: Array(tokens[range]), from: 0, blockTable: table, wantLogits: false)
            batch.logitRows = Array(windows.scoredPositions)
            let logits = try model.forward(batch, kv: kv)
            let targets = tokens[range.lowerBound + windows.scoredPositions.lowerBound + 1..<range.upperBound]
            for (row, target) in targets.enumerated() {
                result.negativeLogLikelihood -= logProbability(of: Int(target), in: logits[row * v..<(row + 1) * v])
            }
            result.scoredTokens += targets.count
            try onWindow(w, targets, logits)
        }
        return result
    }

    /// log softmax(row)[index], in double so that a sum over tens of thousands of tokens keeps its digits.
    static func logProbability(of index: Int, in row: ArraySlice<Float>) -> Double {
        let top = Double(row.max() ?? 0)
        var sum = 0.0
        for x in row { sum += exp(Double(x) - top) }
        return Double(row[row.startIndex + index]) - top - log(sum)
    }
}

// One step's input: a flat batch of tokens from any number of sequences. Each token carries its position
// and its sequence, each sequence its block table; `logitRows` says which tokens need logits (the last
// prompt token of a prefill, every decode token). Continuous batching and the prefix cache only change
// what goes in here.

import GGUF

package struct ForwardBatch: Sendable {
    package var tokens: [TokenID] = []          // [tokenCount]
    package var positions: [Int] = []           // [tokenCount]
    package var sequenceIndex: [Int] = []       // [tokenCount], an index into blockTables
    package var blockTables: [[BlockID]] = []   // [sequenceCount][blocks]
    package var logitRows: [Int] = []           // token indices whose logits the step returns, in order
    /// Token indices whose final hidden state (the normed residual the LM head reads) the step returns, in
    /// order: what an embedding request pools.
    package var hiddenRows: [Int] = []

    package init() {}

    package var tokenCount: Int { tokens.count }

    /// Adds a sequence's tokens at positions start..<start+count; returns the sequence index.
    @discardableResult
    package mutating func append(sequence tokens: [TokenID], from start: Int, blockTable: [BlockID], wantLogits: Bool) -> Int {
        let s = blockTables.count
        blockTables.append(blockTable)
        for (i, t) in tokens.enumerated() {
            self.tokens.append(t)
            positions.append(start + i)
            sequenceIndex.append(s)
        }
        if wantLogits, !tokens.isEmpty { logitRows.append(self.tokens.count - 1) }
        return s
    }
}

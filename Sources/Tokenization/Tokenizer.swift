// The model's tokenizer built from GGUF metadata alone: text -> [TokenID] and back, exact against
// llama.cpp. Special tokens are cut out of the text first, then each plain span is pre-tokenized and
// merged by the model's BPE (byte-level) or SentencePiece algorithm.

import GGUF

package struct Tokenizer: Sendable {
    package enum Kind: Sendable, Equatable {
        /// `tokenizer.ggml.model = gpt2`, with its pre-tokenizer.
        case bytePairEncoding(PreTokenizer)
        /// `tokenizer.ggml.model = llama`.
        case sentencePiece
    }

    package let kind: Kind
    let vocabulary: Vocabulary
    /// Bytes each token decodes to (empty for unused/undefined tokens).
    let pieces: FlatBytes
    private let bytePairs: BytePairEncoder?
    private let sentencePiece: SentencePieceEncoder?
    private let specials: SpecialTokenMatcher

    package let bosTokenID: TokenID?
    package let eosTokenID: TokenID?
    package let unknownTokenID: TokenID?
    /// Tokens that end a generation (llama.cpp's EOG set): eos, eot, eom, FIM pad/repo/file-separator
    /// tokens, and every token whose text is one of llama.cpp's known end markers.
    package let endOfGenerationIDs: Set<TokenID>
    /// Whether a prompt should start with BOS (`tokenizer.ggml.add_bos_token`, else llama.cpp's default).
    package let addBOS: Bool
    /// SentencePiece: a space is put before text that starts the input or follows a special token.
    package let addSpacePrefix: Bool
    /// `tokenizer.chat_template`, if the model has one.
    package let chatTemplate: String?

    package var vocabularySize: Int { vocabulary.count }

    /// Bytes the byte-level vocabulary has no token for: encode drops them, as llama.cpp does.
    package var bytesWithoutToken: Set<UInt8> {
        guard let bytePairs else { return [] }
        return Set((0...255).filter { bytePairs.byteTokens[$0] < 0 }.map(UInt8.init))
    }

    /// Reads the tokenizer of the GGUF file at `path`.
    package init(modelPath path: String) throws(TokenizationError) {
        let file: GGUFFile
        do {
            file = try GGUFFile(path: path)
        } catch {
            throw .cannotRead(path: path, reason: error.description)
        }
        try self.init(metadata: file.metadata)
    }

    package init(metadata: GGUFMetadata) throws(TokenizationError) {
        func get<T>(_ key: String, _ read: (String) throws(GGUFError) -> T) throws(TokenizationError) -> T? {
            guard metadata.contains(key) else { return nil }
            do { return try read(key) } catch { throw TokenizationError(error, key: key) }
        }
        guard let model = try get(GGUFKey.tokenizerModel, metadata.string) else {
            throw .missingKey(GGUFKey.tokenizerModel)
        }
        guard let tokens = try get(GGUFKey.tokens, metadata.stringArray) else { throw .missingKey(GGUFKey.tokens) }
        let vocabulary = try Vocabulary(tokens: tokens, types: try get(GGUFKey.tokenTypes, metadata.int32Array),
                                        scores: try get(GGUFKey.scores, metadata.float32Array))
        self.vocabulary = vocabulary

        func tokenID(_ key: String) throws(TokenizationError) -> TokenID? {
            guard let value = try get(key, metadata.integer) else { return nil }
            guard value >= 0, value < vocabulary.count else {
                throw .badMetadata(key: key, reason: "token id \(value) is outside the vocabulary of \(vocabulary.count)")
            }
            return TokenID(value)
        }

        let preTokenizer: PreTokenizer?
        switch model {
        case "gpt2":
            let pre = try get(GGUFKey.tokenizerPre, metadata.string) ?? "gpt2"
            let kind = try PreTokenizer(ggufName: pre)
            guard let merges = try get(GGUFKey.merges, metadata.stringArray) else { throw .missingKey(GGUFKey.merges) }
            self.kind = .bytePairEncoding(kind)
            self.bytePairs = try BytePairEncoder(vocabulary: vocabulary, merges: merges)
            self.sentencePiece = nil
            preTokenizer = kind
        case "llama":
            self.kind = .sentencePiece
            self.bytePairs = nil
            self.sentencePiece = SentencePieceEncoder(vocabulary: vocabulary, unknownID: try tokenID(GGUFKey.unknownTokenID) ?? 0)
            preTokenizer = nil
        default:
            throw .unsupportedModel(model)
        }

        // llama.cpp's defaults when a key is absent: SPM has bos 1 / eos 2 / unk 0; gpt2 has bos = eos = 11.
        let isSentencePiece = kind == .sentencePiece
        bosTokenID = try tokenID(GGUFKey.bosTokenID) ?? (isSentencePiece ? 1 : 11).validID(in: vocabulary.count)
        eosTokenID = try tokenID(GGUFKey.eosTokenID) ?? (isSentencePiece ? 2 : 11).validID(in: vocabulary.count)
        unknownTokenID = try tokenID(GGUFKey.unknownTokenID) ?? (isSentencePiece ? 0.validID(in: vocabulary.count) : nil)
        addBOS = try get(GGUFKey.addBOS, metadata.bool) ?? (isSentencePiece || preTokenizer?.addsBOSByDefault == true)
        addSpacePrefix = isSentencePiece ? (try get(GGUFKey.addSpacePrefix, metadata.bool) ?? true) : false
        chatTemplate = try get(GGUFKey.chatTemplate, metadata.string)

        var pieces = FlatBytes()
        for id in 0..<vocabulary.count {
            switch vocabulary.types[id] {
            case .normal:
                if isSentencePiece {
                    pieces.append(Self.unescapeSpaces(vocabulary.texts[id]))
                } else {
                    pieces.append(ByteLevel.decode(vocabulary.text(id)))
                }
            case .control, .unknown, .userDefined:
                pieces.append(vocabulary.texts[id])
            case .byte:
                pieces.append(Self.byteValue(vocabulary.text(id)).map { [$0] } ?? [])
            case .unused, .undefined:
                pieces.append(EmptyCollection())
            }
        }
        self.pieces = pieces
        specials = SpecialTokenMatcher(vocabulary: vocabulary)

        var endOfGeneration = Set<TokenID>()
        for id in 0..<vocabulary.count where Self.endOfGenerationTexts.contains(vocabulary.text(id)) {
            endOfGeneration.insert(TokenID(id))
        }
        // Like llama.cpp, only the first token (by id) matching each FIM list counts.
        for names in Self.fimEndOfGenerationTexts {
            if let id = names.lazy.compactMap({ vocabulary.id(of: $0) }).min() { endOfGeneration.insert(id) }
        }
        for id in [eosTokenID, try tokenID(GGUFKey.eotTokenID), try tokenID(GGUFKey.eomTokenID)].compactMap({ $0 }) {
            endOfGeneration.insert(id)
        }
        endOfGenerationIDs = endOfGeneration
    }

    /// Token texts llama.cpp treats as end of generation wherever they appear in a vocabulary.
    static let endOfGenerationTexts: Set<String> = [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
        "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
        "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>",
    ]

    /// llama.cpp's fill-in-the-middle pad, repository and file-separator tokens, which it also counts as EOG.
    static let fimEndOfGenerationTexts: [[String]] = [
        ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
        ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"],
        ["<|file_sep|>"],
    ]

    private static func unescapeSpaces(_ text: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var i = text.startIndex
        while i < text.endIndex {
            if text[i] == 0xE2, i + 2 < text.endIndex, text[i + 1] == 0x96, text[i + 2] == 0x81 {
                out.append(0x20)
                i += 3
            } else {
                out.append(text[i])
                i += 1
            }
        }
        return out
    }

    /// 0x41 for "<0x41>".
    private static func byteValue(_ text: String) -> UInt8? {
        guard text.count == 6, text.hasPrefix("<0x"), text.hasSuffix(">") else { return nil }
        return UInt8(text.dropFirst(3).prefix(2), radix: 16)
    }

    // MARK: Encoding

    /// Token ids of `text`. Never adds BOS: callers prepend `bosTokenID` when `addBOS` is true.
    /// With `parseSpecial`, control-token texts such as "<|im_start|>" become their ids; without it
    /// they are tokenized as plain text (user-defined tokens are matched either way, as in llama.cpp).
    package func encode(_ text: String, parseSpecial: Bool = true) -> [TokenID] {
        var text = text
        return text.withUTF8 { encode(utf8: $0, parseSpecial: parseSpecial) }
    }

    /// A rendered chat prompt: the template's markup with special tokens parsed, the messages' contents
    /// without (control tokens typed by a user are encoded as their text).
    package func encode(_ chat: RenderedChat) -> [TokenID] {
        var text = chat.text
        return text.withUTF8 { encode(utf8: $0, parseSpecial: true, plainRanges: chat.contentRanges) }
    }

    package func encode(utf8 bytes: UnsafeBufferPointer<UInt8>, parseSpecial: Bool = true, plainRanges: [Range<Int>] = []) -> [TokenID] {
        var output: [TokenID] = []
        output.reserveCapacity(bytes.count / 3 + 4)
        var state = EncodeState()
        var previousWasSpecial = true
        for fragment in specials.partition(bytes, parseSpecial: parseSpecial, plainRanges: plainRanges) {
            switch fragment {
            case .token(let id):
                output.append(id)
                previousWasSpecial = true
            case .text(let range):
                let span = UnsafeBufferPointer(rebasing: bytes[range])
                if let bytePairs, case .bytePairEncoding(let pre) = kind {
                    encodeBytePairs(span, pre: pre, encoder: bytePairs, state: &state, into: &output)
                } else if let sentencePiece {
                    var escaped: [UInt8] = addSpacePrefix && previousWasSpecial ? [0xE2, 0x96, 0x81] : []
                    for byte in span {
                        if byte == 0x20 { escaped.append(contentsOf: [0xE2, 0x96, 0x81]) } else { escaped.append(byte) }
                    }
                    sentencePiece.encode(escaped, vocabulary: vocabulary, into: &output)
                }
                previousWasSpecial = false
            }
        }
        return output
    }

    /// Buffers reused across the spans and words of one encode call.
    private struct EncodeState {
        var scalars: [UInt32] = []
        var classes: [UInt8] = []
        var offsets: [Int] = []
        var words: [Range<Int>] = []
        var scratch = BytePairEncoder.Scratch()
        var encodedWord: [UInt8] = []
        var cache = WordCache()
    }

    private func encodeBytePairs(_ span: UnsafeBufferPointer<UInt8>, pre: PreTokenizer, encoder: BytePairEncoder,
                                 state: inout EncodeState, into output: inout [TokenID]) {
        decodeScalars(span, &state)
        state.words.removeAll(keepingCapacity: true)
        state.scalars.withUnsafeBufferPointer { scalars in
            state.classes.withUnsafeBufferPointer { classes in
                pre.split(scalars, classes, into: &state.words)
            }
        }
        for word in state.words {
            let bytes = UnsafeBufferPointer(rebasing: span[state.offsets[word.lowerBound]..<state.offsets[word.upperBound]])
            if pre.wholeWordsFirst {
                state.encodedWord.removeAll(keepingCapacity: true)
                ByteLevel.encode(bytes, into: &state.encodedWord)
                if let id = vocabulary.id(of: state.encodedWord) {
                    output.append(id)
                    continue
                }
            }
            // Words repeat a lot in running text; the cache skips their merge loop (it only pays off
            // once a text has a few hundred words, so short texts bypass it).
            if span.count >= WordCache.minimumTextBytes, bytes.count > 1, bytes.count <= WordCache.maximumWordBytes {
                if state.cache.lookup(bytes, into: &output) { continue }
                let start = output.count
                encoder.encode(word: bytes, scratch: &state.scratch, into: &output)
                state.cache.insert(bytes, ids: output[start...])
            } else {
                encoder.encode(word: bytes, scratch: &state.scratch, into: &output)
            }
        }
    }

    /// Fills state.scalars / classes / offsets (UTF-8 offset of each scalar, plus the end) from valid UTF-8.
    private func decodeScalars(_ span: UnsafeBufferPointer<UInt8>, _ state: inout EncodeState) {
        state.scalars.removeAll(keepingCapacity: true)
        state.classes.removeAll(keepingCapacity: true)
        state.offsets.removeAll(keepingCapacity: true)
        UnicodeClasses.basicPlane.withUnsafeBufferPointer { table in
            var i = 0
            let n = span.count
            while i < n {
                let lead = span[i]
                var value: UInt32
                var length: Int
                if lead < 0x80 {
                    value = UInt32(lead)
                    length = 1
                } else if lead < 0xE0 {
                    value = UInt32(lead & 0x1F)
                    length = 2
                } else if lead < 0xF0 {
                    value = UInt32(lead & 0x0F)
                    length = 3
                } else {
                    value = UInt32(lead & 0x07)
                    length = 4
                }
                length = min(length, n - i)
                for k in 1..<max(length, 1) { value = value << 6 | UInt32(span[i + k] & 0x3F) }
                state.scalars.append(value)
                state.classes.append(value < 0x10000 ? table[Int(value)] : UnicodeClasses.classify(value))
                state.offsets.append(i)
                i += length
            }
            state.offsets.append(n)
        }
    }

    // MARK: Decoding

    /// The text of `ids`. Control tokens are written as their text when `renderSpecial` (so
    /// decode(encode(s)) == s), and skipped otherwise. Invalid UTF-8 becomes U+FFFD.
    package func decode(_ ids: [TokenID], renderSpecial: Bool = true) -> String {
        var bytes: [UInt8] = []
        var first = true
        for id in ids {
            appendPiece(id, renderSpecial: renderSpecial, stripLeadingSpace: first, into: &bytes)
            first = false
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The bytes one token stands for in decoded text (may be part of a UTF-8 character).
    package func pieceBytes(_ id: TokenID) -> [UInt8] {
        guard id >= 0, Int(id) < vocabulary.count else { return [] }
        return Array(pieces[Int(id)])
    }

    /// One token's decoded text, as llama-tokenize shows it (' world'); a partial UTF-8 character
    /// shows as U+FFFD.
    package func piece(_ id: TokenID) -> String { String(decoding: pieceBytes(id), as: UTF8.self) }

    /// The token's text exactly as stored in the vocabulary ("Ġworld").
    package func tokenText(_ id: TokenID) -> String {
        guard id >= 0, Int(id) < vocabulary.count else { return "" }
        return vocabulary.text(Int(id))
    }

    package func tokenType(_ id: TokenID) -> TokenType? {
        guard id >= 0, Int(id) < vocabulary.count else { return nil }
        return vocabulary.types[Int(id)]
    }

    /// The id of the token whose stored text is `text`.
    package func tokenID(forText text: String) -> TokenID? { vocabulary.id(of: text) }

    /// Appends a token's bytes. `stripLeadingSpace` removes the space SentencePiece put before the
    /// first word (llama.cpp's detokenize does the same when add_space_prefix is set).
    func appendPiece(_ id: TokenID, renderSpecial: Bool, stripLeadingSpace: Bool, into bytes: inout [UInt8]) {
        guard id >= 0, Int(id) < vocabulary.count else { return }
        let type = vocabulary.types[Int(id)]
        if !renderSpecial && (type == .control || type == .unknown) { return }
        var piece = pieces[Int(id)]
        if stripLeadingSpace && addSpacePrefix && piece.first == 0x20 { piece = piece.dropFirst() }
        bytes.append(contentsOf: piece)
    }
}

private extension Int {
    func validID(in count: Int) -> TokenID? { self < count ? TokenID(self) : nil }
}

// Fuzz entry points: each takes arbitrary bytes to one of tally's parsers of untrusted input and checks
// what must hold besides "no crash". Built for libFuzzer by `bench/fuzz/run.sh` (TALLY_FUZZ=1 adds
// `-sanitize=fuzzer,address` and defines FUZZING); built normally, `tally-fuzz TARGET FILE...` replays
// inputs (the committed corpora, and any crash file libFuzzer wrote) through the same code.

import Foundation
import GGUF
import ModelRuntime
import OpenAIServer
import Sampling
import Tokenization

enum FuzzTarget: String, CaseIterable {
    /// GGUF header, metadata and tensor infos: `GGUFFile(path:)` over the bytes as a file, then the packed
    /// weights file's checksum check over what it accepted.
    case gguf
    /// Every wire-request decoder with its validation: completions, chat, outcomes.
    case wire
    /// Tokenizer encode of arbitrary bytes (as text, special tokens parsed and not).
    case tokenize
    /// Chat-template rendering of arbitrary messages in every template, then encoding.
    case chat
    /// The streaming detokenizer over arbitrary token ids: its pieces add up to `decode`.
    case detokenize
    /// The stop-string matcher over arbitrary stops and fragments: no stop string is ever released.
    case stop
    /// The ordered JSON parser and the JSON-schema compiler: what parses writes back to the same value, and
    /// a schema that compiles gives a recognizer that takes any bytes without a crash.
    case schema

    /// SmolLM2's tokenizer (every tokenizer.* key, no tensors), committed with the tests.
    static let tokenizer: Tokenizer = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let path = root.appendingPathComponent("Tests/TokenizationTests/Fixtures/smollm2-vocab.gguf").path
        do { return try Tokenizer(modelPath: path) } catch { fatalError("fuzz: cannot load \(path): \(error)") }
    }()

    static let droppedBytes = tokenizer.bytesWithoutToken

    static let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("tally-fuzz-\(getpid()).gguf").path

    func run(_ bytes: [UInt8]) {
        switch self {
        case .gguf:
            _ = FileManager.default.createFile(atPath: Self.scratch, contents: Data(bytes))
            if let file = try? GGUFFile(path: Self.scratch) {
                // What was accepted must be readable to the end.
                for tensor in file.tensors { _ = tensor.name.utf8.count + tensor.dimensions.reduce(1, &*) }
                // The packed-weights file check reads every tensor's data against the stored checksums.
                _ = PackedWeightsFile.checksumsMatch(file, full: true)
            }
        case .wire:
            _ = try? decodeRequest(CompletionRequest.self, from: bytes)
            _ = try? decodeRequest(ChatCompletionRequest.self, from: bytes)
            _ = try? decodeRequest(OutcomeRequest.self, from: bytes)
        case .tokenize:
            let text = String(decoding: bytes, as: UTF8.self)
            // Byte-level BPE gives the text back, except bytes the vocabulary has no token for (SmolLM2 lacks
            // some control bytes, 0x14 among them, and rare lead bytes such as 0xF1), which are dropped as
            // llama.cpp drops them; decode then replaces what no longer forms UTF-8 with U+FFFD, whose bytes
            // have tokens. So the round trip is a fixed point after one pass. (It may be longer than the
            // text: a dropped lead byte turns its three continuation bytes into three U+FFFD.)
            for special in [false, true] {
                let once = Self.tokenizer.decode(Self.tokenizer.encode(text, parseSpecial: special), renderSpecial: true)
                let twice = Self.tokenizer.decode(Self.tokenizer.encode(once, parseSpecial: special), renderSpecial: true)
                check(twice == once, "the round trip is not a fixed point")
                check(once == text || text.utf8.contains { Self.droppedBytes.contains($0) },
                      "text of bytes that all have tokens did not round-trip")
            }
        case .chat:
            // The first byte picks the template (one per input: rendering all of them made a run 13x slower),
            // the rest are NUL-separated role/content pairs; roles folded onto the four the server accepts.
            guard let first = bytes.first else { return }
            let parts = bytes.dropFirst().split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
            let roles = ["system", "user", "assistant", "user"]
            var messages: [ChatMessage] = []
            for i in stride(from: 0, to: parts.count - 1, by: 2) {
                messages.append(ChatMessage(role: roles[(parts[i].utf8.first.map(Int.init) ?? 0) % roles.count], content: parts[i + 1]))
            }
            let names = ChatTemplate.names + ChatTemplate.Llama2Style.allCases.map(\.rawValue)
                + ChatTemplate.MistralStyle.allCases.map(\.rawValue)
            let name = names[Int(first) % names.count]
            guard let template = try? ChatTemplate.named(name) else { fatalError("fuzz: no template \(name)") }
            let chat = template.renderMarked(messages, addGenerationPrompt: true)
            check(chat.text == template.render(messages, addGenerationPrompt: true), "\(name): marked text differs")
            _ = Self.tokenizer.encode(chat)
        case .detokenize:
            let vocabulary = Self.tokenizer.vocabularySize
            var ids: [TokenID] = []
            for i in stride(from: 0, to: bytes.count - 1, by: 2) { ids.append(TokenID((Int(bytes[i]) << 8 | Int(bytes[i + 1])) % vocabulary)) }
            var detokenizer = StreamingDetokenizer(tokenizer: Self.tokenizer)
            var text = ""
            for id in ids { text += detokenizer.append(id) }
            text += detokenizer.flush()
            check(text == Self.tokenizer.decode(ids, renderSpecial: false), "streamed pieces differ from decode")
        case .stop:
            // Up to 4 stops (first bytes, NUL-separated), then fragments of what follows.
            let parts = bytes.split(separator: 0, maxSplits: 4, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
            let stops = Array(parts.dropLast().filter { !$0.isEmpty }.prefix(4))
            let stream = parts.last ?? ""
            var matcher = StopStringMatcher(stops: stops)
            var released = "", matched = false
            var rest = Substring(stream)
            while !rest.isEmpty && !matched {
                let n = min(rest.count, 1 + (rest.unicodeScalars.first.map { Int($0.value) } ?? 0) % 5)
                let out = matcher.append(String(rest.prefix(n)))
                released += out.text
                matched = out.matched
                rest = rest.dropFirst(n)
            }
            if !matched { released += matcher.flush() }
            for s in stops { check(!released.contains(s), "a stop string was released") }
        case .schema:
            guard let value = try? JSON(parsing: bytes) else { return }
            check((try? JSON(parsing: Array(value.serialized.utf8))) == value, "parsed JSON does not write back to itself")
            for strict in [false, true] {
                guard let grammar = try? SchemaCompiler.compile(value, strict: strict, param: "schema") else { continue }
                // The schema's own bytes, then its serialization, as output: accepted or refused, never a crash.
                for text in [bytes, Array(value.serialized.utf8)] {
                    var recognizer = JSONRecognizer(grammar: grammar)
                    for b in text where !recognizer.accept(b) { break }
                }
            }
        }
    }

    private func check(_ ok: Bool, _ message: @autoclosure () -> String) {
        if !ok { fatalError("fuzz \(rawValue): \(message())") }
    }
}

#if FUZZING
/// libFuzzer's entry; the target comes from TALLY_FUZZ_TARGET.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzTarget.selected.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func runLibFuzzer(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                  _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

/// SwiftPM links an executable target's entry point as `<module>_main`; here it hands over to libFuzzer.
@_cdecl("Fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc, argv = argv
    return runLibFuzzer(&argc, &argv) { data, size in fuzzOneInput(data, size) }
}

extension FuzzTarget {
    static let selected: FuzzTarget = {
        let name = ProcessInfo.processInfo.environment["TALLY_FUZZ_TARGET"] ?? ""
        guard let target = FuzzTarget(rawValue: name) else {
            fatalError("set TALLY_FUZZ_TARGET to one of \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return target
    }()
}
#else
/// Replays files through a target: `tally-fuzz TARGET FILE_OR_FOLDER...`.
@main struct Replay {
    static func main() {
        let arguments = CommandLine.arguments.dropFirst()
        guard let name = arguments.first, let target = FuzzTarget(rawValue: name) else {
            print("usage: tally-fuzz \(FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")) FILE_OR_FOLDER...")
            exit(2)
        }
        var count = 0
        for path in arguments.dropFirst() {
            var isFolder: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: path, isDirectory: &isFolder)
            let files = isFolder.boolValue
                ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { path + "/" + $0 } : [path]
            for file in files {
                guard let data = FileManager.default.contents(atPath: file) else { continue }
                target.run(Array(data))
                count += 1
            }
        }
        print("replayed \(count) inputs through \(name)")
    }
}
#endif

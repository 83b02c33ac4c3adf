// Encode throughput of tally's tokenizer on a text file, single thread, in MB/s of UTF-8 input.
// Usage: swift run -c release TokenizerBench <model.gguf> <corpus.txt> [repeats]
// Prints the token count and an FNV hash of the ids so the run can be checked against hf_bench.py.

import Foundation
import GGUF
import Tokenization

let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
    print("usage: TokenizerBench <model.gguf> <corpus.txt> [repeats]")
    exit(2)
}
let repeats = arguments.count > 3 ? Int(arguments[3]) ?? 5 : 5

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

let loadStart = now()
let tokenizer = try Tokenizer(modelPath: arguments[1])
let loadSeconds = now() - loadStart
let corpus = try String(contentsOfFile: arguments[2], encoding: .utf8)
// Split on U+000A scalars: as Characters, "\r\n" is one grapheme and would not split.
let lines = corpus.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { String(String.UnicodeScalarView($0)) }
let megabytes = Double(corpus.utf8.count) / 1e6

func hash(_ ids: [TokenID]) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for id in ids { h = (h ^ UInt64(UInt32(bitPattern: id))) &* 0x0000_0100_0000_01b3 }
    return h
}

func measure(_ label: String, unit: String = "tokens", _ body: () -> Int) {
    var times: [Double] = []
    var tokens = 0
    for _ in 0..<repeats {
        let start = now()
        tokens = body()
        times.append(now() - start)
    }
    times.sort()
    let median = times[times.count / 2]
    print(String(format: "%@: %.2f MB/s median, %.2f MB/s best (%d %@, %.3f s median of %d)",
                 label, megabytes / median, megabytes / times[0], tokens, unit, median, repeats))
}

print(String(format: "corpus %.2f MB, %d lines; tokenizer loaded in %.3f s", megabytes, lines.count, loadSeconds))
let whole = tokenizer.encode(corpus)
print("whole-text ids: \(whole.count) tokens, fnv \(String(hash(whole), radix: 16))")
measure("encode whole text") { tokenizer.encode(corpus).count }
measure("encode line by line") { lines.reduce(0) { $0 + tokenizer.encode($1).count } }
measure("decode whole text", unit: "bytes") { tokenizer.decode(whole).utf8.count }

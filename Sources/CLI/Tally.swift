// The `tally` command: subcommands each in their own file, thin wrappers over the modules.

import ArgumentParser
import Foundation

@main
struct Tally: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tally",
        abstract: "A self-hosted inference server for small int8 language models that meters what every request cost.",
        subcommands: [Pull.self, List.self, Inspect.self, Quantize.self, Tokenize.self, Generate.self, PerplexityCommand.self, Serve.self, ReportCommand.self, Fleet.self,
                      Bench.self])
}

/// Writes a line to standard error (progress and logs; stdout stays for results).
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// A progress line that redraws in place on a terminal and prints plain lines otherwise.
struct ProgressLine {
    let isTerminal = isatty(STDERR_FILENO) == 1
    var lastPlainPercent = -1

    mutating func update(_ done: Int, of total: Int, _ label: String) {
        let percent = total == 0 ? 100 : done * 100 / total
        if isTerminal {
            let width = 30, filled = width * percent / 100
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            FileHandle.standardError.write(Data("\r[\(bar)] \(percent)% \(done)/\(total) \(label)\u{1B}[K".utf8))
            if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
        } else if percent / 10 != lastPlainPercent / 10 || done == total {
            lastPlainPercent = percent
            printError("\(percent)% (\(done)/\(total)) \(label)")
        }
    }
}

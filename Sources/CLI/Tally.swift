// The `tally` command: subcommands each in their own file, thin wrappers over the modules.

import ArgumentParser
import Foundation

@main
enum Main {
    /// `tally serve` takes settings from the environment and a config file too (ServeSettings).
    static func main() async {
        var arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "serve" {
            do {
                arguments = ["serve"] + (try ServeSettings.arguments(commandLine: Array(arguments.dropFirst()),
                                                                      environment: ProcessInfo.processInfo.environment))
            } catch {
                Tally.exit(withError: error)
            }
        }
        await Tally.main(arguments)
    }
}

struct Tally: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tally",
        abstract: "A self-hosted inference server for small int8 language models that meters what every request cost.",
        discussion: """
            Exit status: 0 success; 1 an error the command reports (a bad flag value, a file it cannot read, a port \
            in use, a model it cannot load); 64 a command line it cannot parse (unknown flag, missing value).

            Examples:
              tally pull && tally serve
              tally bench run --workload bench/workloads/short-chat.json --url http://127.0.0.1:8080
              tally report --format html --output report.html
            """,
        version: "tally \(tallyVersion)",
        subcommands: [Pull.self, List.self, Inspect.self, Quantize.self, Tokenize.self, Generate.self, PerplexityCommand.self, Serve.self, ReportCommand.self, Fleet.self,
                      Bench.self])
}

/// The release this source tree is (`tally --version`).
let tallyVersion = "0.22.0"

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

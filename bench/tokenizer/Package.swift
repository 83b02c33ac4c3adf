// swift-tools-version: 6.1
// Tokenizer encode-throughput benchmark, kept out of the main package: it compiles tally's own
// Tokenization and GGUF sources (symlinked from ../../Sources) into one release executable.
import PackageDescription

let package = Package(
    name: "TokenizerBench",
    platforms: [.macOS(.v15)],
    targets: [
        .target(name: "GGUF"),
        .target(name: "Tokenization", dependencies: ["GGUF"]),
        .executableTarget(name: "TokenizerBench", dependencies: ["Tokenization", "GGUF"]),
    ]
)

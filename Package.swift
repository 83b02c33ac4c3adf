// swift-tools-version: 6.1
// tally: a self-hosted inference server for small int8 language models that meters what every request cost.
// The target graph follows ../shared/design.md section 2; a target imports only what is listed beside it.
import PackageDescription

/// Hot-loop targets are optimised even under `swift test` (debug): unsafeFlags come after SwiftPM's
/// `-Onone`/`-O0`, so they win. Never put work inside `precondition` in these targets: `-Ounchecked`
/// deletes the whole expression, side effects included.
let optimisedSwift: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"])]
let optimisedC: [CSetting] = [.unsafeFlags(["-O3"])]

/// `TALLY_FUZZ=1` (bench/fuzz/run.sh, in its own scratch path) instruments the parsers of untrusted input
/// for libFuzzer with AddressSanitizer and builds `tally-fuzz` as a fuzzer; otherwise nothing changes.
let fuzzing = Context.environment["TALLY_FUZZ"] == "1"
let fuzzed: [SwiftSetting] = fuzzing ? [.unsafeFlags(["-sanitize=fuzzer,address"]), .define("FUZZING")] : []

let package = Package(
    name: "tally",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tally", targets: ["CLI"]),
        .executable(name: "tally-fuzz", targets: ["Fuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/vapor/sqlite-nio", from: "1.13.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.34.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/vapor/multipart-kit", from: "4.7.1"),
    ],
    targets: [
        // Read (mmap) and write GGUF v3; tensor codecs; key strings and tensor names live here.
        .target(name: "GGUF", swiftSettings: fuzzed),
        // Q8_0 dot/GEMV/GEMM in C with AVX-512 VNNI, AVX2 and scalar versions chosen at run time.
        .target(name: "CKernels", cSettings: optimisedC),
        // Swift face of the kernels, f32 ops, the compute thread pool, scalar references.
        .target(name: "Kernels", dependencies: ["CKernels"], swiftSettings: optimisedSwift),
        // Byte-level BPE and SentencePiece BPE from GGUF metadata, streaming detokenizer, chat templates.
        .target(name: "Tokenization", dependencies: ["GGUF"], swiftSettings: fuzzed),
        // Model config, weights as views into the mmap, paged KV storage, the forward pass.
        .target(name: "ModelRuntime", dependencies: ["GGUF", "Kernels"], swiftSettings: optimisedSwift + fuzzed),
        // Logits -> token.
        .target(name: "Sampling", swiftSettings: optimisedSwift + fuzzed),
        // Requests, scheduler, block pool, prefix cache, engine loop. Token ids only.
        .target(name: "Engine", dependencies: [
            "ModelRuntime", "Sampling", .product(name: "Crypto", package: "swift-crypto"), .product(name: "Logging", package: "swift-log"),
        ]),
        // Usage records, prices, cost model, store, reports.
        .target(name: "Metering", dependencies: [
            "GGUF", .product(name: "SQLiteNIO", package: "sqlite-nio"), .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "Logging", package: "swift-log"),
        ]),
        // Any supported GGUF -> Q8_0 GGUF, and pulling the default model (`tally pull`).
        .target(name: "Quantizer", dependencies: [
            "GGUF", "Kernels", "ModelRuntime", .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        // OpenAI-compatible HTTP routes; usage records and costs through Metering's Meter.
        .target(name: "OpenAIServer", dependencies: [
            "Engine", "Tokenization", "Metering",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"), .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Prometheus", package: "swift-prometheus"), .product(name: "Logging", package: "swift-log"),
            .product(name: "MultipartKit", package: "multipart-kit"),
        ], swiftSettings: fuzzed),
        // libFuzzer entry points over the parsers of untrusted input (bench/fuzz/run.sh); a replayer otherwise.
        .executableTarget(name: "Fuzz", dependencies: ["GGUF", "ModelRuntime", "Tokenization", "OpenAIServer", "Sampling"], swiftSettings: fuzzed,
                          linkerSettings: fuzzing ? [.unsafeFlags(["-sanitize=fuzzer,address"])] : []),
        // Workloads, load generator, results.
        .target(name: "BenchKit", dependencies: [
            "Engine", "Tokenization", "Metering", "GGUF", "ModelRuntime", "Sampling",
            .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Histogram", package: "hdrhistogram-swift"),
        ]),
        // `tally` subcommands: thin, no logic of their own.
        .executableTarget(name: "CLI", dependencies: [
            "GGUF", "Kernels", "Tokenization", "ModelRuntime", "Sampling", "Engine", "Metering",
            "Quantizer", "OpenAIServer", "BenchKit",
            .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Logging", package: "swift-log"),
        ]),
        // Tests only: tiny synthetic models, GGUF byte builders, goldens.
        .target(name: "TestSupport", dependencies: ["GGUF"]),

        .testTarget(name: "GGUFTests", dependencies: ["GGUF", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "QuantizerTests", dependencies: ["Quantizer", "GGUF", "ModelRuntime", "TestSupport"]),
        .testTarget(name: "TokenizationTests", dependencies: ["Tokenization", "GGUF", "TestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "SamplingTests", dependencies: ["Sampling"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "ModelRuntime", "Tokenization", "GGUF", "TestSupport"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "CKernels"]),
        .testTarget(name: "OpenAIServerTests", dependencies: [
            "OpenAIServer", "Engine", "Tokenization", "Sampling", "GGUF", "Metering", "ModelRuntime", "Kernels", "TestSupport",
            .product(name: "HummingbirdTesting", package: "hummingbird"), .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "MeteringTests", dependencies: [
            "Metering", .product(name: "SQLiteNIO", package: "sqlite-nio"),
            .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "Logging", package: "swift-log"),
        ], exclude: ["Fixtures", "Goldens"]),
        .testTarget(name: "BenchKitTests", dependencies: [
            "BenchKit", "Metering", .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
        .testTarget(name: "ModelRuntimeTests", dependencies: ["ModelRuntime", "Engine", "Kernels", "GGUF", "Tokenization", "TestSupport"],
                    resources: [.copy("Fixtures")]),
    ]
)

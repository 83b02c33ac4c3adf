// swift-tools-version: 6.1
// Microbenchmarks of tally's kernels and engine step (ordo-one/benchmark), kept out of the main package so
// CI stays lean. It compiles tally's own sources (symlinked from ../../Sources) with the same flags as the
// root package. Thresholds are set on allocation counts only, never on time: see README.md.
import PackageDescription

let optimisedSwift: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"])]
let optimisedC: [CSetting] = [.unsafeFlags(["-O3"])]

let package = Package(
    name: "TallyMicro",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        .target(name: "GGUF"),
        .target(name: "CKernels", cSettings: optimisedC),
        .target(name: "Kernels", dependencies: ["CKernels"], swiftSettings: optimisedSwift),
        .target(name: "ModelRuntime", dependencies: ["GGUF", "Kernels"], swiftSettings: optimisedSwift),
        .target(name: "Sampling"),
        .target(name: "Engine", dependencies: ["ModelRuntime", "Sampling", .product(name: "Crypto", package: "swift-crypto")]),
        .executableTarget(
            name: "EngineBenchmarks",
            dependencies: ["CKernels", "Kernels", "ModelRuntime", "Sampling", "Engine", "GGUF",
                           .product(name: "Benchmark", package: "benchmark")],
            path: "Benchmarks/EngineBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
    ]
)

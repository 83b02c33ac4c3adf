// The models folder's catalog: the committed models/catalog.json is the built-in one, names resolve
// case-insensitively, hub sources split into repository and file, and the folder is the checkout's.

import Foundation
import ModelRuntime
import Testing

@Suite struct ModelCatalogTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized

    @Test func theCommittedCatalogIsTheBuiltInOne() throws {
        let committed = try ModelCatalog.load(directory: Self.root.appendingPathComponent("models").path)
        #expect(committed == ModelCatalog.builtIn)
        #expect(committed.models.filter { $0.default == true }.map(\.file) == [DefaultModel.smolLM2.fileName])
        #expect(Set(committed.models.map(\.name)).count == committed.models.count)
    }

    @Test func namesResolveAndHubSourcesSplit() throws {
        let entry = try #require(ModelCatalog.builtIn.entry(named: "Qwen2.5-0.5B-Instruct"))
        #expect(entry.file == "qwen2.5-0.5b-instruct-q8_0.gguf")
        #expect(entry.huggingFace?.repo == "Qwen/Qwen2.5-0.5B-Instruct-GGUF" && entry.huggingFace?.file == entry.file)
        #expect(ModelCatalog.builtIn.entry(named: "no-such-model") == nil)
        #expect(ModelCatalog.builtIn.entry(named: "smollm2-135m-instruct")?.huggingFace == nil)
    }

    @Test func aFolderWithoutACatalogUsesTheBuiltInOneAndABadOneIsAnError() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tally-catalog-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(try ModelCatalog.load(directory: folder.path) == ModelCatalog.builtIn)
        try Data("{\"models\": 3}".utf8).write(to: folder.appendingPathComponent("catalog.json"))
        #expect(throws: ModelCatalog.CatalogError.self) { try ModelCatalog.load(directory: folder.path) }
    }

    /// The test binary lives under this checkout's .build, so without $TALLY_MODELS the folder is the
    /// checkout's models/, whatever the working directory.
    @Test func theModelsFolderIsTheCheckoutsWithoutTALLYMODELS() throws {
        try #require(ProcessInfo.processInfo.environment["TALLY_MODELS"] == nil)
        #expect(URL(fileURLWithPath: DefaultModel.modelsDirectory).standardized.path == Self.root.appendingPathComponent("models").path)
    }
}

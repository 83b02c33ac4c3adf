// `tally tokenize`: token ids of a text as a JSON array, to compare with llama.cpp's llama-tokenize.

import ArgumentParser
import Foundation
import GGUF
import ModelRuntime
import Tokenization

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the token ids of a text as a JSON array.",
        discussion: "Example: tally tokenize 'Hello, world'")

    @Option(help: "GGUF model whose tokenizer to use (default: the model from `tally pull`).") var model: String?
    @Flag(help: "Treat special-token text such as <|im_start|> as plain text.") var noSpecial = false
    @Flag(help: "Print [id, piece] pairs instead of bare ids.") var pieces = false
    @Option(help: "Read the text from this file.") var file: String?
    @Argument(help: "The text.") var text: String?

    func run() throws {
        let input: String
        switch (text, file) {
        case (let t?, nil): input = t
        case (nil, let f?): input = try String(contentsOfFile: f, encoding: .utf8)
        default: throw ValidationError("give either TEXT or --file F")
        }
        let gguf = try GGUFFile(path: Pull.modelPath(model))
        let tokenizer = try Tokenizer(metadata: gguf.metadata)
        let ids = tokenizer.encode(input, parseSpecial: !noSpecial)
        let object: Any = pieces ? ids.map { [Int($0), tokenizer.piece($0)] as [Any] } : ids.map(Int.init)
        let data = try JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes])
        print(String(decoding: data, as: UTF8.self))
    }
}

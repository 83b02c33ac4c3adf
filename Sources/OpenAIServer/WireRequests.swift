// Request bodies of /v1/completions and /v1/chat/completions, decoded at the edge into native types.
// OpenAI fields tally does not implement are refused by name (UnimplementedFields.swift), other unknown
// fields are ignored; a field of the wrong type or out of range is a 400 naming it (the
// OpenAI wire name, e.g. "messages[1].content"), never a crash or a silent default.

import Foundation
import GGUF
import Tokenization

/// What a completions `prompt` may be: text or token ids (batches of one are unwrapped).
package enum PromptInput: Sendable, Equatable {
    case text(String)
    case tokens([TokenID])
}

/// Fields both generation endpoints share.
package struct GenerationFields: Decodable, Sendable {
    package var model: String?
    package var maxTokens: Int?
    package var temperature: Float?
    package var topP: Float?
    package var topK: Int?
    package var minP: Float?
    package var seed: UInt64?
    package var stop: [String] = []
    package var presencePenalty: Float?
    package var frequencyPenalty: Float?
    package var repetitionPenalty: Float?
    package var stream = false
    package var includeUsage = false
    package var user: String?
    package var ignoreEOS = false
    package var n: Int?
    /// vLLM's `cache_salt`: only requests with the same salt (and, with API keys, the same tenant) share
    /// prefix-cache blocks.
    package var cacheSalt: String?

    enum CodingKeys: String, CodingKey {
        case model, temperature, seed, stop, stream, user, n
        case maxTokens = "max_tokens", topP = "top_p", topK = "top_k", minP = "min_p"
        case presencePenalty = "presence_penalty", frequencyPenalty = "frequency_penalty"
        case repetitionPenalty = "repetition_penalty", streamOptions = "stream_options", ignoreEOS = "ignore_eos"
        case cacheSalt = "cache_salt"
    }

    /// Longest `user` (and `cache_salt`) accepted.
    package static let maxUserBytes = 256
    /// Longest stop string: the matcher holds back up to this much text.
    package static let maxStopBytes = 1024

    struct StreamOptions: Decodable {
        var includeUsage: Bool?
        enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
    }

    package init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decodeIfPresent(String.self, forKey: .model)
        maxTokens = try c.decodeInteger(.maxTokens)
        temperature = try c.decodeIfPresent(Float.self, forKey: .temperature)
        topP = try c.decodeIfPresent(Float.self, forKey: .topP)
        topK = try c.decodeInteger(.topK)
        minP = try c.decodeIfPresent(Float.self, forKey: .minP)
        if c.contains(.seed), try !c.decodeNil(forKey: .seed) {
            // OpenAI seeds are signed 64-bit integers; the sampler takes the same 64 bits.
            if let unsigned = try? c.decode(UInt64.self, forKey: .seed) {
                seed = unsigned
            } else {
                seed = UInt64(bitPattern: try c.decode(Int64.self, forKey: .seed))
            }
        }
        if c.contains(.stop), try !c.decodeNil(forKey: .stop) {
            if let one = try? c.decode(String.self, forKey: .stop) {
                stop = [one]
            } else if let many = try? c.decode([String].self, forKey: .stop) {
                stop = many
            } else {
                throw APIError.invalid("stop must be a string or a list of at most 4 strings", param: "stop")
            }
            guard stop.count <= 4 else {
                throw APIError.invalid("stop has \(stop.count) strings but at most 4 are allowed; send fewer", param: "stop")
            }
            if let long = stop.first(where: { $0.utf8.count > Self.maxStopBytes }) {
                throw APIError.invalid("a stop string has \(long.utf8.count) bytes but at most \(Self.maxStopBytes) are allowed", param: "stop")
            }
            stop = stop.filter { !$0.isEmpty }
        }
        presencePenalty = try c.decodeIfPresent(Float.self, forKey: .presencePenalty)
        frequencyPenalty = try c.decodeIfPresent(Float.self, forKey: .frequencyPenalty)
        repetitionPenalty = try c.decodeIfPresent(Float.self, forKey: .repetitionPenalty)
        stream = try c.decodeIfPresent(Bool.self, forKey: .stream) ?? false
        includeUsage = try c.decodeIfPresent(StreamOptions.self, forKey: .streamOptions)?.includeUsage ?? false
        user = try c.decodeIfPresent(String.self, forKey: .user)
        // Stored with every record: bounded like tags.
        if let user, user.utf8.count > Self.maxUserBytes {
            throw APIError.invalid("user has \(user.utf8.count) bytes but at most \(Self.maxUserBytes) are kept; send a shorter id", param: "user")
        }
        cacheSalt = try c.decodeIfPresent(String.self, forKey: .cacheSalt)
        if let cacheSalt, cacheSalt.isEmpty || cacheSalt.utf8.count > Self.maxUserBytes {
            throw APIError.invalid("cache_salt must be 1-\(Self.maxUserBytes) bytes", param: "cache_salt")
        }
        ignoreEOS = try c.decodeIfPresent(Bool.self, forKey: .ignoreEOS) ?? false
        n = try c.decodeInteger(.n)
    }
}

package struct CompletionRequest: Decodable, Sendable {
    package var fields: GenerationFields
    package var prompt: PromptInput
    /// Log-probabilities of the chosen token and this many alternatives (0 = chosen token only).
    package var logprobs: Int?
    package var echo = false

    enum CodingKeys: String, CodingKey { case prompt, logprobs, echo }

    package init(from decoder: any Decoder) throws {
        try UnimplementedField.refuse(UnimplementedField.completions, in: decoder)
        fields = try GenerationFields(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        logprobs = try c.decodeInteger(.logprobs)
        echo = try c.decodeIfPresent(Bool.self, forKey: .echo) ?? false
        guard c.contains(.prompt) else { throw APIError.invalid("prompt is required", param: "prompt") }
        let shapes = "prompt must be a string, a list of one string, a list of token ids, or a list of one list of token ids"
        if let text = try? c.decode(String.self, forKey: .prompt) {
            prompt = .text(text)
        } else if let texts = try? c.decode([String].self, forKey: .prompt), !texts.isEmpty {
            guard texts.count == 1 else {
                throw APIError.invalid("prompt has \(texts.count) prompts but this server takes one per request; send them as separate requests", param: "prompt")
            }
            prompt = .text(texts[0])
        } else if let ids = try? c.decode([Int32].self, forKey: .prompt) {
            prompt = .tokens(ids)
        } else if let lists = try? c.decode([[Int32]].self, forKey: .prompt) {
            guard lists.count == 1 else {
                throw APIError.invalid("prompt has \(lists.count) token lists but this server takes one per request; send them as separate requests", param: "prompt")
            }
            prompt = .tokens(lists[0])
        } else {
            throw APIError.invalid(shapes, param: "prompt")
        }
    }
}

/// The body of /v1/embeddings: one or more inputs, each text or token ids.
package struct EmbeddingRequest: Decodable, Sendable {
    package var model: String?
    package var inputs: [PromptInput]
    /// "float" (JSON numbers) or "base64" (little-endian float32 bytes, what the openai clients ask for).
    package var base64: Bool
    package var dimensions: Int?
    package var user: String?

    /// OpenAI's limit on inputs per request.
    package static let maxInputs = 2048

    enum CodingKeys: String, CodingKey { case model, input, user, dimensions, encodingFormat = "encoding_format" }

    package init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decodeIfPresent(String.self, forKey: .model)
        user = try c.decodeIfPresent(String.self, forKey: .user)
        if let user, user.utf8.count > GenerationFields.maxUserBytes {
            throw APIError.invalid("user must be at most \(GenerationFields.maxUserBytes) bytes", param: "user")
        }
        dimensions = try c.decodeInteger(.dimensions)
        switch try c.decodeIfPresent(String.self, forKey: .encodingFormat) ?? "float" {
        case "float": base64 = false
        case "base64": base64 = true
        case let other: throw APIError.invalid("encoding_format is \(other.debugDescription) but must be \"float\" or \"base64\"", param: "encoding_format")
        }
        guard c.contains(.input) else { throw APIError.invalid("input is required", param: "input") }
        if let text = try? c.decode(String.self, forKey: .input) {
            inputs = [.text(text)]
        } else if let texts = try? c.decode([String].self, forKey: .input), !texts.isEmpty {
            inputs = texts.map(PromptInput.text)
        } else if let ids = try? c.decode([Int32].self, forKey: .input), !ids.isEmpty {
            inputs = [.tokens(ids)]
        } else if let lists = try? c.decode([[Int32]].self, forKey: .input), !lists.isEmpty {
            inputs = lists.map(PromptInput.tokens)
        } else {
            throw APIError.invalid("input must be a string, a list of strings, a list of token ids, or a list of lists of token ids, not empty", param: "input")
        }
        guard inputs.count <= Self.maxInputs else {
            throw APIError.invalid("input has \(inputs.count) items but at most \(Self.maxInputs) are allowed per request; split it", param: "input")
        }
    }
}

package struct ChatCompletionRequest: Decodable, Sendable {
    package var fields: GenerationFields
    package var messages: [ChatMessage] = []
    package var logprobs = false
    package var topLogprobs: Int?
    package var maxCompletionTokens: Int?
    /// A chat template name for this request, overriding the server's (non-standard, as vLLM's).
    package var chatTemplate: String?
    /// `response_format`: free text, one JSON object (JSON mode), or JSON valid against a schema.
    package var responseFormat = ResponseFormat.text
    /// `tools`' function names and whether each is strict; their parameter schemas are read from the body
    /// in order, as response_format's schema is.
    package var tools: [(name: String, strict: Bool)] = []
    package var toolChoice = ToolChoice.none

    package enum ToolChoice: Sendable, Equatable {
        case none, auto, required
        case function(String)
    }

    package enum ResponseFormat: Sendable, Equatable {
        case text, jsonObject
        /// The schema itself is read from the body in order (JSON(parsing:)): Codable loses key order.
        case jsonSchema(name: String, strict: Bool)
    }

    enum CodingKeys: String, CodingKey {
        case messages, logprobs, tools
        case topLogprobs = "top_logprobs", maxCompletionTokens = "max_completion_tokens", chatTemplate = "chat_template"
        case responseFormat = "response_format", toolChoice = "tool_choice", parallelToolCalls = "parallel_tool_calls"
    }
    enum ToolKeys: String, CodingKey { case type, function }
    enum FunctionKeys: String, CodingKey { case name, description, parameters, strict, arguments }
    enum CallKeys: String, CodingKey { case id, type, function }
    enum FormatKeys: String, CodingKey { case type, jsonSchema = "json_schema" }
    enum SchemaKeys: String, CodingKey { case name, schema, strict, description }

    enum MessageKeys: String, CodingKey { case role, content, toolCalls = "tool_calls", toolCallID = "tool_call_id" }
    /// Roles a message may have (`developer` is read as `system`; `tool` is a tool call's result).
    static let roles = ["system", "developer", "user", "assistant", "tool"]
    enum PartKeys: String, CodingKey { case type, text }

    /// OpenAI's names of schemas and functions: 1-64 of a-z, A-Z, 0-9, '_' and '-'.
    static func isName(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count) && name.utf8.allSatisfy { b in
            b == UInt8(ascii: "_") || b == UInt8(ascii: "-") || (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b)
        }
    }

    package init(from decoder: any Decoder) throws {
        try UnimplementedField.refuse(UnimplementedField.chat, in: decoder)
        fields = try GenerationFields(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        logprobs = try c.decodeIfPresent(Bool.self, forKey: .logprobs) ?? false
        topLogprobs = try c.decodeInteger(.topLogprobs)
        maxCompletionTokens = try c.decodeInteger(.maxCompletionTokens)
        chatTemplate = try c.decodeIfPresent(String.self, forKey: .chatTemplate)
        if c.contains(.responseFormat), try !c.decodeNil(forKey: .responseFormat) {
            let format = try c.nestedContainer(keyedBy: FormatKeys.self, forKey: .responseFormat)
            switch try format.decodeIfPresent(String.self, forKey: .type) {
            case "text": responseFormat = .text
            case "json_object": responseFormat = .jsonObject
            case "json_schema":
                guard format.contains(.jsonSchema) else {
                    throw APIError.invalid("response_format.json_schema is required with type json_schema", param: "response_format.json_schema")
                }
                let schema = try format.nestedContainer(keyedBy: SchemaKeys.self, forKey: .jsonSchema)
                let name = try schema.decodeIfPresent(String.self, forKey: .name) ?? ""
                guard Self.isName(name) else {
                    throw APIError.invalid("response_format.json_schema.name must be 1-64 letters, digits, '_' or '-'", param: "response_format.json_schema.name")
                }
                guard schema.contains(.schema) else {
                    throw APIError.invalid("response_format.json_schema.schema is required", param: "response_format.json_schema.schema")
                }
                responseFormat = .jsonSchema(name: name, strict: try schema.decodeIfPresent(Bool.self, forKey: .strict) ?? false)
            case let other:
                throw APIError.invalid("response_format.type is \((other ?? "missing").debugDescription.prefix(40)) but must be text, json_object or json_schema",
                                       param: "response_format.type")
            }
        }
        try decodeTools(c)
        guard c.contains(.messages) else { throw APIError.invalid("messages is required", param: "messages") }
        var list = try c.nestedUnkeyedContainer(forKey: .messages)
        messages = []
        while !list.isAtEnd {
            let index = list.currentIndex
            let m = try list.nestedContainer(keyedBy: MessageKeys.self)
            guard let role = try m.decodeIfPresent(String.self, forKey: .role) else {
                throw APIError.invalid("messages[\(index)].role is required", param: "messages[\(index)].role")
            }
            // The role is written into the prompt as markup: only the roles the templates know.
            guard Self.roles.contains(role) else {
                throw APIError.invalid("messages[\(index)].role \(role.debugDescription.prefix(40)) is not one of \(Self.roles.joined(separator: ", "))",
                                       param: "messages[\(index)].role")
            }
            var content = ""
            if m.contains(.content), try !m.decodeNil(forKey: .content) {
                if let text = try? m.decode(String.self, forKey: .content) {
                    content = text
                } else if var parts = try? m.nestedUnkeyedContainer(forKey: .content) {
                    while !parts.isAtEnd {
                        let partIndex = parts.currentIndex
                        let param = "messages[\(index)].content[\(partIndex)]"
                        guard let part = try? parts.nestedContainer(keyedBy: PartKeys.self),
                              (try? part.decode(String.self, forKey: .type)) == "text",
                              let text = try? part.decode(String.self, forKey: .text) else {
                            throw APIError.invalid("\(param) must be {\"type\": \"text\", \"text\": ...}; this server takes text only", param: param)
                        }
                        content += text
                    }
                } else {
                    throw APIError.invalid("messages[\(index)].content must be a string or a list of text parts",
                                           param: "messages[\(index)].content")
                }
            }
            var calls: [ChatMessage.ToolCall] = []
            if role == "assistant", m.contains(.toolCalls), try !m.decodeNil(forKey: .toolCalls) {
                var list = try m.nestedUnkeyedContainer(forKey: .toolCalls)
                while !list.isAtEnd {
                    let param = "messages[\(index)].tool_calls[\(list.currentIndex)]"
                    let call = try list.nestedContainer(keyedBy: CallKeys.self)
                    let function = try call.nestedContainer(keyedBy: FunctionKeys.self, forKey: .function)
                    let name = try function.decode(String.self, forKey: .name)
                    guard Self.isName(name) else { throw APIError.invalid("\(param).function.name must be 1-64 letters, digits, '_' or '-'", param: param + ".function.name") }
                    let arguments = try function.decode(String.self, forKey: .arguments)
                    guard (try? JSON(parsing: Array(arguments.utf8))) != nil else {
                        throw APIError.invalid("\(param).function.arguments must be JSON text", param: param + ".function.arguments")
                    }
                    calls.append(.init(name: name, arguments: arguments))
                }
            }
            if role == "tool", !m.contains(.toolCallID) {
                throw APIError.invalid("messages[\(index)].tool_call_id is required for a tool message", param: "messages[\(index)].tool_call_id")
            }
            messages.append(ChatMessage(role: role == "developer" ? "system" : role, content: content, toolCalls: calls))
        }
    }

    private mutating func decodeTools(_ c: KeyedDecodingContainer<CodingKeys>) throws {
        if c.contains(.tools), try !c.decodeNil(forKey: .tools) {
            var list = try c.nestedUnkeyedContainer(forKey: .tools)
            while !list.isAtEnd {
                let param = "tools[\(list.currentIndex)]"
                let tool = try list.nestedContainer(keyedBy: ToolKeys.self)
                guard try tool.decodeIfPresent(String.self, forKey: .type) == "function" else {
                    throw APIError.invalid("\(param).type must be \"function\"", param: param + ".type")
                }
                let function = try tool.nestedContainer(keyedBy: FunctionKeys.self, forKey: .function)
                let name = try function.decodeIfPresent(String.self, forKey: .name) ?? ""
                guard Self.isName(name) else {
                    throw APIError.invalid("\(param).function.name must be 1-64 letters, digits, '_' or '-'", param: param + ".function.name")
                }
                guard !tools.contains(where: { $0.name == name }) else {
                    throw APIError.invalid("\(param).function.name \(name) is already the name of another tool", param: param + ".function.name")
                }
                _ = try function.decodeIfPresent(String.self, forKey: .description)
                tools.append((name, try function.decodeIfPresent(Bool.self, forKey: .strict) ?? false))
            }
        }
        _ = try c.decodeIfPresent(Bool.self, forKey: .parallelToolCalls)
        toolChoice = tools.isEmpty ? .none : .auto
        guard c.contains(.toolChoice), try !c.decodeNil(forKey: .toolChoice) else { return }
        if let choice = try? c.decode(String.self, forKey: .toolChoice) {
            switch choice {
            case "none": toolChoice = .none
            case "auto": toolChoice = .auto
            case "required": toolChoice = .required
            default: throw APIError.invalid("tool_choice must be none, auto, required or {\"type\": \"function\", \"function\": {\"name\": ...}}", param: "tool_choice")
            }
        } else {
            let choice = try c.nestedContainer(keyedBy: ToolKeys.self, forKey: .toolChoice)
            let function = try choice.nestedContainer(keyedBy: FunctionKeys.self, forKey: .function)
            toolChoice = .function(try function.decode(String.self, forKey: .name))
        }
        if toolChoice != .none, tools.isEmpty {
            throw APIError.invalid("tool_choice asks for a tool call but tools is empty", param: "tool_choice")
        }
        if case .function(let name) = toolChoice, !tools.contains(where: { $0.name == name }) {
            throw APIError.invalid("tool_choice names \(name.debugDescription.prefix(64)), which is not in tools", param: "tool_choice")
        }
    }
}

extension KeyedDecodingContainer {
    /// An optional integer field. Read as a number first: Foundation reports a fractional number (1.5)
    /// read as Int as corrupt data with no coding path, which would read as malformed JSON.
    func decodeInteger(_ key: Key) throws -> Int? {
        guard contains(key), try !decodeNil(forKey: key) else { return nil }
        let number = try decode(Double.self, forKey: key)
        guard number.rounded() == number, abs(number) < 1e15 else {
            throw APIError.invalid("\(key.stringValue) must be an integer", param: key.stringValue)
        }
        return Int(number)
    }
}

/// Decodes a request body, turning every decoding failure into a 400 that names the parameter.
package func decodeRequest<T: Decodable>(_ type: T.Type, from body: [UInt8]) throws -> T {
    do {
        return try JSONDecoder().decode(T.self, from: Data(body))
    } catch let error as APIError {
        throw error
    } catch let error as DecodingError {
        throw apiError(for: error)
    }
}

private func apiError(for error: DecodingError) -> APIError {
    func path(_ codingPath: [any CodingKey]) -> String {
        var out = ""
        for key in codingPath {
            if let index = key.intValue {
                out += "[\(index)]"
            } else {
                out += out.isEmpty ? key.stringValue : ".\(key.stringValue)"
            }
        }
        return out
    }
    func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is Int.Type, is Int32.Type, is Int64.Type, is UInt64.Type: return "an integer"
        case is Float.Type, is Double.Type: return "a number"
        default: return "of another type"
        }
    }
    switch error {
    case .dataCorrupted(let context):
        if context.codingPath.isEmpty {
            return .malformedJSON(context.debugDescription)
        }
        let param = path(context.codingPath)
        return .invalid("\(param) is not a valid value (\(context.debugDescription)); check its type and range", param: param)
    case .typeMismatch(let type, let context):
        if context.codingPath.isEmpty { return .malformedJSON("the body must be a JSON object") }
        let param = path(context.codingPath)
        let expected = context.debugDescription.contains("dictionary") ? "an object" : typeName(type)
        return .invalid("\(param) must be \(expected)", param: param)
    case .valueNotFound(let type, let context):
        let param = path(context.codingPath)
        return .invalid("\(param) must be \(typeName(type)), not null", param: param)
    case .keyNotFound(let key, let context):
        let param = path(context.codingPath + [key])
        return .invalid("\(param) is required", param: param)
    @unknown default:
        return .malformedJSON("\(error)")
    }
}

// OpenAI's response shapes for /v1/completions ("text_completion") and /v1/chat/completions
// ("chat.completion" / "chat.completion.chunk"): whole bodies, SSE chunks, and each endpoint's logprobs
// format. Keys are written in OpenAI's order; absent values are explicit nulls as OpenAI sends them.

import GGUF
import Tokenization

enum ResponseShape: Sendable {
    /// `echoOffset`: Unicode scalars of echoed prompt before the generated text (logprobs text_offset).
    case completion(id: String, created: Int, model: String, tokenizer: Tokenizer, echoOffset: Int)
    case chat(id: String, created: Int, model: String, tokenizer: Tokenizer)

    private var header: [(String, JSON)] {
        switch self {
        case .completion(let id, let created, let model, _, _):
            return [("id", .string(id)), ("object", .string("text_completion")), ("created", .int(created)), ("model", .string(model))]
        case .chat(let id, let created, let model, _):
            return [("id", .string(id)), ("object", .string("chat.completion")), ("created", .int(created)), ("model", .string(model))]
        }
    }

    private var chunkHeader: [(String, JSON)] {
        switch self {
        case .completion: return header
        case .chat(let id, let created, let model, _):
            return [("id", .string(id)), ("object", .string("chat.completion.chunk")), ("created", .int(created)), ("model", .string(model))]
        }
    }

    /// The non-streamed body.
    func body(text: String, logprobs: [TokenLogprobEntry]?, finishReason: String, usage: JSON, toolCalls: [ToolCallPlan.Call] = []) -> JSON {
        let choice: JSON
        switch self {
        case .completion:
            choice = .object([("text", .string(text)), ("index", .int(0)), ("logprobs", logprobsJSON(logprobs)),
                              ("finish_reason", .string(finishReason))])
        case .chat:
            // With tool calls, empty content is null, as OpenAI sends it.
            var message: [(String, JSON)] = [("role", .string("assistant")), ("content", toolCalls.isEmpty || !text.isEmpty ? .string(text) : .null)]
            if !toolCalls.isEmpty { message.append(("tool_calls", Self.toolCallsJSON(toolCalls, streamed: false))) }
            choice = .object([("index", .int(0)), ("message", .object(message)),
                              ("logprobs", logprobsJSON(logprobs)), ("finish_reason", .string(finishReason))])
        }
        return .object(header + [("choices", .array([choice])), ("usage", usage)])
    }

    /// The chunk sent before any generated text: chat's carries the assistant role (nil: no such chunk;
    /// completions' echoed prompt comes from `CompletionService.generate` as the first delta).
    func firstChunk(usageNull: Bool) -> JSON? {
        switch self {
        case .completion:
            return nil
        case .chat:
            let choice = JSON.object([("index", .int(0)),
                                      ("delta", .object([("role", .string("assistant")), ("content", .string(""))])),
                                      ("logprobs", .null), ("finish_reason", .null)])
            return .object(chunkHeader + [("choices", .array([choice]))] + (usageNull ? [("usage", .null)] : []))
        }
    }

    /// A content chunk, or with `finishReason` the last one (empty text / empty delta).
    func chunk(text: String, logprobs: [TokenLogprobEntry]?, finishReason: String?, usageNull: Bool, toolCalls: [ToolCallPlan.Call] = []) -> JSON {
        let choice: JSON
        switch self {
        case .completion:
            choice = .object([("text", .string(text)), ("index", .int(0)), ("logprobs", logprobsJSON(logprobs)),
                              ("finish_reason", .optional(finishReason))])
        case .chat:
            let delta: JSON = !toolCalls.isEmpty ? .object([("tool_calls", Self.toolCallsJSON(toolCalls, streamed: true))])
                : finishReason != nil && text.isEmpty ? .object([]) : .object([("content", .string(text))])
            choice = .object([("index", .int(0)), ("delta", delta), ("logprobs", logprobsJSON(logprobs)),
                              ("finish_reason", .optional(finishReason))])
        }
        return .object(chunkHeader + [("choices", .array([choice]))] + (usageNull ? [("usage", .null)] : []))
    }

    /// OpenAI's `tool_calls`: each call's id, type and function (name, arguments as JSON text); in a
    /// stream's delta each also has its index.
    private static func toolCallsJSON(_ calls: [ToolCallPlan.Call], streamed: Bool) -> JSON {
        .array(calls.enumerated().map { i, call in
            .object((streamed ? [("index", .int(i))] : []) + [
                ("id", .string(call.id)), ("type", .string("function")),
                ("function", .object([("name", .string(call.name)), ("arguments", .string(call.arguments))])),
            ])
        })
    }

    /// The chunk after the last content chunk when stream_options.include_usage is set.
    func usageChunk(_ usage: JSON) -> JSON {
        .object(chunkHeader + [("choices", .array([])), ("usage", usage)])
    }

    private func logprobsJSON(_ entries: [TokenLogprobEntry]?) -> JSON {
        guard let entries else { return .null }
        switch self {
        case .completion(_, _, _, let tokenizer, let echoOffset):
            // Legacy completions: parallel lists, top alternatives as {token text: logprob}.
            return .object([
                ("tokens", .array(entries.map { .string(tokenizer.piece($0.token)) })),
                ("token_logprobs", .array(entries.map { $0.logprob.map(JSON.float) ?? .null })),
                ("top_logprobs", .array(entries.map { entry -> JSON in
                    guard let top = entry.top else { return .null }
                    // Two tokens may share a text; the object keeps the first (most likely) one.
                    var seen = Set<String>()
                    return .object(top.compactMap { top -> (String, JSON)? in
                        let text = tokenizer.piece(top.token)
                        return seen.insert(text).inserted ? (text, .float(top.logprob)) : nil
                    })
                })),
                ("text_offset", .array(entries.map { .int(($0.fromPrompt ? 0 : echoOffset) + $0.textOffset) })),
            ])
        case .chat(_, _, _, let tokenizer):
            func item(_ token: TokenID, _ logprob: Float) -> [(String, JSON)] {
                [("token", .string(tokenizer.piece(token))), ("logprob", .float(logprob)),
                 ("bytes", .array(tokenizer.pieceBytes(token).map { .int(Int($0)) }))]
            }
            return .object([("content", .array(entries.map { entry in
                .object(item(entry.token, entry.logprob ?? 0)
                        + [("top_logprobs", .array((entry.top ?? []).map { .object(item($0.token, $0.logprob)) }))])
            }))])
        }
    }
}

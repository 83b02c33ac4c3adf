// Tool calling (`tools`, `tool_choice`) through the same constrained sampling as structured output. The
// template writes the tools into the prompt in the format its models were trained on (ChatTemplate+Tools);
// the reply's call is constrained to `{"name": <a tool>, "arguments": <its parameters>}`:
//
// - `required` or a named function: the reply is the call (a Hermes reply is begun with `<tool_call>` in
//   the prompt), constrained from its first token.
// - `auto`: the model answers in text or opens a call; the constraint waits for the call's opening and
//   applies from there (llama.cpp's lazy grammars do the same).
//
// The reply's call is answered in OpenAI's `tool_calls` shape with finish_reason "tool_calls"; text
// before it is the message's content. One call per reply.

import Foundation
import Sampling
import Tokenization

/// How one request's reply may hold a tool call, and how to find it.
struct ToolCallPlan: Sendable {
    let format: ChatTemplate.ToolFormat
    /// The reply is the call (required or named), not text that may open one.
    let forced: Bool

    /// What opens a call in an `auto` reply: Hermes' tag, or Llama 3.1's JSON itself.
    var trigger: String { format == .hermes ? "<tool_call>" : #"{"name""# }
    /// Written after the generation prompt when the call is forced.
    var replyPrefix: String { forced && format == .hermes ? "<tool_call>\n" : "" }

    /// The constraint for the reply.
    func constraint(_ grammar: JSONGrammar, vocabulary: ConstraintVocabulary) -> JSONConstraint {
        forced ? JSONConstraint(vocabulary: vocabulary, grammar: grammar)
            : JSONConstraint(vocabulary: vocabulary, grammar: grammar, trigger: trigger, triggerStartsDocument: format == .llama3)
    }

    struct Call: Sendable, Equatable {
        var id: String
        var name: String
        /// Compact JSON text, as OpenAI sends `function.arguments`.
        var arguments: String
    }

    /// The reply's text before the call, and the call; nil if the reply holds no complete call.
    func split(_ reply: String) -> (content: String, call: Call)? {
        var content = "", callText = Substring(reply)
        if !forced {
            guard let opening = reply.range(of: trigger) else { return nil }
            content = String(reply[..<opening.lowerBound]).trimmingCharacters(in: .whitespacesAndNewlines)
            callText = format == .hermes ? reply[opening.upperBound...] : reply[opening.lowerBound...]
        }
        guard let value = try? JSON(parsing: Array(callText.utf8), trailing: true), case .string(let name)? = value["name"],
              let arguments = value[format.argumentsKey] else { return nil }
        return (content, Call(id: "call_" + CompletionService.randomID(), name: name, arguments: arguments.serialized))
    }
}

extension CompletionService {
    /// The plan and grammar for a chat request's tools (nil when tool_choice is none or there are none).
    func toolCalling(_ wire: ChatCompletionRequest, template: ChatTemplate, body: JSON) throws -> (plan: ToolCallPlan, grammar: JSONGrammar, tools: [String])? {
        if wire.toolChoice == .none { return nil }
        guard let format = template.toolFormat else {
            throw APIError.invalid("tools need a chat template with a tool-call format (chatml for Hermes-style calls, llama3); this server's is \(template.name)",
                                   param: "tools", code: "unsupported_parameter")
        }
        guard wire.responseFormat == .text else {
            throw APIError.invalid("response_format cannot be combined with tools; the tool call is already JSON", param: "response_format")
        }
        guard case .array(let definitions)? = body["tools"] else { throw APIError.invalid("tools must be a list", param: "tools") }
        var offered = Array(zip(wire.tools, definitions))
        if case .function(let name) = wire.toolChoice { offered = offered.filter { $0.0.name == name } }
        let grammar = try SchemaCompiler.compileCall(tools: offered.map { ($0.0.name, $0.1["function"]?["parameters"]) },
                                                     argumentsKey: format.argumentsKey, strict: offered.allSatisfy(\.0.strict))
        let plan = ToolCallPlan(format: format, forced: wire.toolChoice != .auto)
        // As the templates' `tojson` writes them: Qwen's inline, Llama 3.1's indented by 4.
        return (plan, grammar, definitions.map { $0.pythonText(indent: format == .llama3 ? 4 : nil) })
    }
}

/// A streamed reply with tools: text goes out as content until it may be opening a call (a partial
/// opening is held, as a partial stop string is); after that, or from the start when the call is forced,
/// everything is held and `finish` gives the call, or the held text if the reply holds no call.
struct ToolCallHold {
    let plan: ToolCallPlan
    private var matcher: StopStringMatcher
    private var reply = ""
    private var sentScalars = 0
    private var opened = false

    init(plan: ToolCallPlan) {
        self.plan = plan
        matcher = StopStringMatcher(stops: [plan.trigger])
    }

    /// Takes a delta's text; returns the content that may go out now.
    mutating func append(_ text: String) -> String {
        reply += text
        if plan.forced || opened { return "" }
        let (released, matched) = matcher.append(text)
        opened = matched
        sentScalars += released.unicodeScalars.count
        return released
    }

    /// At the end of the reply: the content still held, and the call.
    func finish() -> (String, ToolCallPlan.Call?) {
        if let (_, call) = plan.split(reply) { return ("", call) }
        return (String(String.UnicodeScalarView(reply.unicodeScalars.dropFirst(sentScalars))), nil)
    }
}

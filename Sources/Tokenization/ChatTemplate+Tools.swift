// Tool calling in the chat formats that have it: ChatML models trained on Hermes-style calls (Qwen2.5,
// Qwen3) and Llama 3.1's JSON calls. The tools' definitions go into the system turn (Hermes) or the first
// user turn (Llama 3.1); earlier calls and their results are written as those templates write them.

extension ChatTemplate {
    /// How a model writes a tool call in its reply.
    package enum ToolFormat: Sendable, Equatable {
        /// `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`
        case hermes
        /// `{"name": ..., "parameters": {...}}` as the whole reply.
        case llama3

        /// The key of a call's arguments.
        package var argumentsKey: String { self == .hermes ? "arguments" : "parameters" }
        /// What opens a call in the reply; the call's JSON follows it.
        package var opening: String { self == .hermes ? "<tool_call>" : "" }

        /// A call as JSON text.
        package func text(_ call: ChatMessage.ToolCall) -> String {
            "{\"name\": \"\(call.name)\", \"\(argumentsKey)\": \(call.arguments)}"
        }
    }

    /// The template's tool format; nil for templates without one.
    package var toolFormat: ToolFormat? {
        switch self {
        case .chatml: .hermes
        case .llama3: .llama3
        default: nil
        }
    }

    /// `renderMarked` with tools offered (each tool's JSON definition) and the reply begun with
    /// `replyPrefix` (markup: a forced tool call's opening). Needs a template with a `toolFormat`.
    package func renderMarked(_ messages: [ChatMessage], tools: [String], addGenerationPrompt: Bool, replyPrefix: String = "") -> RenderedChat {
        var out = renderMarked(toolMessages(messages, tools: tools), addGenerationPrompt: addGenerationPrompt)
        out += replyPrefix
        return out
    }

    /// `s` as a JSON string, as Python's json.dumps(ensure_ascii=False) writes it.
    static func jsonString(_ s: String) -> String {
        var out = ""
        appendJSONString(s, to: &out)
        return out
    }

    /// A message's content built from the server's markup and others' text.
    private struct Marked {
        var message: ChatMessage
        init(role: String) { message = ChatMessage(role: role, content: "") }
        mutating func text(_ s: String) { message.content += s }
        mutating func markup(_ s: String) {
            let start = message.content.utf8.count
            message.content += s
            message.markup.append(start..<message.content.utf8.count)
        }
    }

    private func toolMessages(_ messages: [ChatMessage], tools: [String]) -> [ChatMessage] {
        guard let format = toolFormat else { return messages }
        var out: [ChatMessage] = []
        var messages = messages[...]
        switch format {
        case .hermes:
            if !tools.isEmpty {
                // The instructions are markup (Qwen's <tool_call> is a token of its own); the system
                // message and the tool definitions are the client's text.
                var system = Marked(role: "system")
                if let first = messages.first, first.role == "system" {
                    system.text(first.content)
                    system.markup("\n\n")
                    messages = messages.dropFirst()
                } else if case .chatml(let defaultSystemPrompt?) = self {
                    system.markup(defaultSystemPrompt + "\n\n")
                }
                system.markup("# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
                    + "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n")
                for (i, tool) in tools.enumerated() {
                    if i > 0 { system.markup("\n") }
                    system.text(tool)
                }
                system.markup("\n</tools>\n\n"
                    + "For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n"
                    + "<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>")
                out.append(system.message)
            }
            var results: Marked?  // consecutive results share one user turn
            for m in messages {
                if m.role == "tool" {
                    var turn = results ?? Marked(role: "user")
                    turn.markup(results == nil ? "<tool_response>\n" : "\n<tool_response>\n")
                    turn.text(m.content)
                    turn.markup("\n</tool_response>")
                    results = turn
                    continue
                }
                if let turn = results { out.append(turn.message) }
                results = nil
                if !m.toolCalls.isEmpty {
                    var turn = Marked(role: m.role)
                    turn.text(m.content)
                    for (i, call) in m.toolCalls.enumerated() {
                        turn.markup((i > 0 || !m.content.isEmpty ? "\n" : "") + "<tool_call>\n")
                        turn.text(format.text(call))
                        turn.markup("\n</tool_call>")
                    }
                    out.append(turn.message)
                } else {
                    out.append(m)
                }
            }
            if let turn = results { out.append(turn.message) }
        case .llama3:
            var toolsWritten = tools.isEmpty
            if !tools.isEmpty {
                // Llama 3.1's template opens with this system turn when tools are offered.
                var system = "Environment: ipython\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024"
                if let first = messages.first, first.role == "system" {
                    system += "\n\n" + first.content
                    messages = messages.dropFirst()
                }
                out.append(ChatMessage(role: "system", content: system))
            }
            for m in messages {
                if m.role == "tool" {
                    // The template writes a result with `tojson`: a string result as a JSON string.
                    out.append(ChatMessage(role: "ipython", content: Self.jsonString(m.content)))
                } else if !m.toolCalls.isEmpty {
                    out.append(ChatMessage(role: m.role, content: m.toolCalls.map(format.text).joined(separator: "\n")))
                } else if m.role == "user" && !toolsWritten {
                    toolsWritten = true
                    out.append(ChatMessage(role: "user", content:
                        "Given the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.\n\n"
                        + "Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}.Do not use variables.\n\n"
                        + tools.map { $0 + "\n\n" }.joined() + m.content))
                } else {
                    out.append(m)
                }
            }
        }
        return out
    }
}

/// Appends `s` as a JSON string literal: quotes, backslash escapes for '"', '\\' and control characters,
/// everything else as it is (Python's json.dumps(ensure_ascii=False)). The server's JSON writer and the
/// chat templates' `tojson` share it.
package func appendJSONString(_ s: String, to out: inout String) {
    out += "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case "\u{08}": out += "\\b"
        case "\u{0C}": out += "\\f"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    out += "\""
}

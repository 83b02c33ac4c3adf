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

    private func toolMessages(_ messages: [ChatMessage], tools: [String]) -> [ChatMessage] {
        guard let format = toolFormat else { return messages }
        var out: [ChatMessage] = []
        var messages = messages[...]
        switch format {
        case .hermes:
            if !tools.isEmpty {
                var system = ""
                if let first = messages.first, first.role == "system" {
                    system = first.content + "\n\n"
                    messages = messages.dropFirst()
                } else if case .chatml(let defaultSystemPrompt?) = self {
                    system = defaultSystemPrompt + "\n\n"
                }
                system += "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
                    + "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
                    + tools.joined(separator: "\n") + "\n</tools>\n\n"
                    + "For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n"
                    + "<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>"
                out.append(ChatMessage(role: "system", content: system))
            }
            for m in messages {
                if m.role == "tool" {
                    // Consecutive results share one user turn.
                    let response = "<tool_response>\n\(m.content)\n</tool_response>"
                    if let last = out.last, last.role == "user", last.content.hasSuffix("</tool_response>") {
                        out[out.count - 1].content += "\n" + response
                    } else {
                        out.append(ChatMessage(role: "user", content: response))
                    }
                } else if !m.toolCalls.isEmpty {
                    let calls = m.toolCalls.map { "<tool_call>\n\(format.text($0))\n</tool_call>" }.joined(separator: "\n")
                    out.append(ChatMessage(role: m.role, content: m.content.isEmpty ? calls : m.content + "\n" + calls))
                } else {
                    out.append(m)
                }
            }
        case .llama3:
            var toolsWritten = tools.isEmpty
            for m in messages {
                if m.role == "tool" {
                    out.append(ChatMessage(role: "ipython", content: m.content))
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

// Chat templates without a Jinja engine: the model's `tokenizer.chat_template` is recognised by its
// markers (as llama.cpp's llm_chat_detect_template does) and rendered natively. Rendering follows
// llama.cpp's llm_chat_apply_template, plus the ChatML default system prompt some templates carry.
// BOS is never written into the text: the caller adds `bosTokenID` when the tokenizer's `addBOS` says so.

import GGUF

package struct ChatMessage: Sendable, Equatable {
    package var role: String
    package var content: String
    /// An assistant message's tool calls; a "tool" message is a call's result.
    package var toolCalls: [ToolCall]
    /// Stretches of `content` (UTF-8 offsets) that the server wrote as markup, a tool call's tags: their
    /// special-token text is special tokens, as the model was trained on. Empty for what clients send.
    package var markup: [Range<Int>] = []

    package struct ToolCall: Sendable, Equatable {
        /// A function name (letters, digits, '_' and '-') and its arguments as JSON text.
        package var name: String
        package var arguments: String
        package init(name: String, arguments: String) {
            self.name = name
            self.arguments = arguments
        }
    }

    package init(role: String, content: String, toolCalls: [ToolCall] = []) {
        self.role = role
        self.content = content
        self.toolCalls = toolCalls
    }
}

package enum ChatTemplate: Sendable, Equatable {
    /// `<|im_start|>role\ncontent<|im_end|>\n` (SmolLM2, Qwen). `defaultSystemPrompt` is inserted
    /// before the first message when that is not a system message, as SmolLM2's and Qwen2.5's
    /// templates do; it is read from the template text itself.
    case chatml(defaultSystemPrompt: String?)
    /// `<|start_header_id|>role<|end_header_id|>\n\n` + trimmed content + `<|eot_id|>`.
    case llama3
    /// `[INST] ... [/INST]` with Llama 2's system-prompt variants.
    case llama2(Llama2Style)
    /// Mistral's `[INST]` formats, by tokenizer version.
    case mistral(MistralStyle)
    /// `<start_of_turn>user\n...<end_of_turn>\n`; "assistant" is "model"; system text joins the
    /// first user turn (Gemma has no system role).
    case gemma
    /// `<|role|>\ncontent<|end|>\n`.
    case phi3
    /// `<|role|>\ncontent` + end-of-turn marker + `\n`.
    case zephyr(endOfTurn: String)

    package enum Llama2Style: String, Sendable, CaseIterable {
        /// No system support: a system message is written as plain text in the first turn.
        case plain = "llama2"
        /// `<<SYS>>\n...\n<</SYS>>\n\n` inside the first `[INST]`.
        case system = "llama2-sys"
        /// As `system`, and later turns start with `<s>`.
        case systemWithBOS = "llama2-sys-bos"
        /// As `system`, with every message trimmed.
        case systemStripped = "llama2-sys-strip"
    }

    package enum MistralStyle: String, Sendable, CaseIterable {
        case v1 = "mistral-v1", v3 = "mistral-v3", v3Tekken = "mistral-v3-tekken"
        case v7 = "mistral-v7", v7Tekken = "mistral-v7-tekken"
    }

    /// What `detect` found: the template to use, and a warning for the caller to log when it fell back.
    package struct Detection: Sendable, Equatable {
        package let template: ChatTemplate
        package let fellBack: Bool
        package let warning: String?
    }

    /// The template matching `source` (a model's `tokenizer.chat_template`, or a template name).
    /// Unrecognised or missing templates fall back to ChatML with a warning.
    package static func detect(_ source: String?) -> Detection {
        guard let source, !source.isEmpty else {
            return Detection(template: .chatml(defaultSystemPrompt: nil), fellBack: true,
                             warning: "the model has no chat template; using ChatML. Pass --chat-template NAME if the model expects another format")
        }
        if let named = ChatTemplate(name: source) { return Detection(template: named, fellBack: false, warning: nil) }
        if let found = recognise(source) { return Detection(template: found, fellBack: false, warning: nil) }
        return Detection(template: .chatml(defaultSystemPrompt: nil), fellBack: true,
                         warning: "unrecognised chat template (\(source.prefix(60).debugDescription)...); using ChatML. Pass --chat-template NAME (\(names.joined(separator: ", "))) to choose one")
    }

    /// The detected template, dropping the fallback warning.
    package init(detecting source: String?) { self = Self.detect(source).template }

    /// A template by name, as `--chat-template NAME` gives it; nil for an unknown name.
    package init?(name: String) {
        switch name {
        case "chatml": self = .chatml(defaultSystemPrompt: nil)
        case "llama3": self = .llama3
        case "gemma": self = .gemma
        case "phi3": self = .phi3
        case "zephyr": self = .zephyr(endOfTurn: "<|endoftext|>")
        case "mistral": self = .mistral(.v7)
        default:
            if let style = Llama2Style(rawValue: name) {
                self = .llama2(style)
            } else if let style = MistralStyle(rawValue: name) {
                self = .mistral(style)
            } else {
                return nil
            }
        }
    }

    /// `init(name:)` that throws a TokenizationError listing the known names.
    package static func named(_ name: String) throws(TokenizationError) -> ChatTemplate {
        guard let template = ChatTemplate(name: name) else { throw .unknownChatTemplate(name, known: names) }
        return template
    }

    package static let names: [String] = ["chatml", "llama3", "gemma", "phi3", "zephyr", "mistral"]
        + Llama2Style.allCases.map(\.rawValue) + MistralStyle.allCases.map(\.rawValue)

    package var name: String {
        switch self {
        case .chatml: "chatml"
        case .llama3: "llama3"
        case .llama2(let style): style.rawValue
        case .mistral(let style): style.rawValue
        case .gemma: "gemma"
        case .phi3: "phi3"
        case .zephyr: "zephyr"
        }
    }

    /// Marker tests in llama.cpp's order (an earlier, more specific marker wins).
    private static func recognise(_ t: String) -> ChatTemplate? {
        if t.contains("<|im_start|>") {
            // Phi-4 (<|im_sep|>) and SmolVLM (<end_of_utterance>) reuse the marker with other formats.
            if t.contains("<|im_sep|>") || t.contains("<end_of_utterance>") { return nil }
            return .chatml(defaultSystemPrompt: defaultSystemPrompt(inChatML: t))
        }
        if t.hasPrefix("mistral") || t.contains("[INST]") {
            if t.contains("[SYSTEM_PROMPT]") { return .mistral(.v7) }
            if t.contains("' [INST] ' + system_message") || t.contains("[AVAILABLE_TOOLS]") {
                if t.contains(" [INST]") { return .mistral(.v1) }
                if t.contains("\"[INST]\"") { return .mistral(.v3Tekken) }
                return .mistral(.v3)
            }
            if t.contains("content.strip()") { return .llama2(.systemStripped) }
            if t.contains("bos_token + '[INST]") { return .llama2(.systemWithBOS) }
            if t.contains("<<SYS>>") { return .llama2(.system) }
            return .llama2(.plain)
        }
        if t.contains("<|assistant|>") && t.contains("<|end|>") { return .phi3 }
        if t.contains("<|user|>") {
            // Zephyr ends turns with the EOS token: literal "<|endoftext|>" in StableLM's copy,
            // `eos_token` ("</s>") in HuggingFaceH4's.
            return .zephyr(endOfTurn: t.contains("<|endoftext|>") ? "<|endoftext|>" : "</s>")
        }
        if t.contains("<start_of_turn>") { return .gemma }
        if t.contains("<|start_header_id|>") && t.contains("<|end_header_id|>") { return .llama3 }
        return nil
    }

    /// The literal system prompt a ChatML template writes when the conversation has none, e.g. SmolLM2's
    /// `'<|im_start|>system\nYou are a helpful AI assistant named SmolLM, ...<|im_end|>\n'`. A block whose
    /// text is built from the messages (`' + message['content'] + '`) is not a default and is skipped.
    static func defaultSystemPrompt(inChatML template: String) -> String? {
        let marker = "<|im_start|>system"
        var rest = template[...]
        while let start = rest.range(of: marker) {
            rest = rest[start.upperBound...]
            var body = rest
            if body.hasPrefix("\n") {
                body = body.dropFirst()
            } else if body.hasPrefix("\\n") {
                body = body.dropFirst(2)
            } else {
                continue
            }
            guard let end = body.range(of: "<|im_end|>") else { continue }
            let literal = body[..<end.lowerBound]
            let isExpression = ["{{", "{%", "' +", "+ '", "\" +", "+ \"", "message"].contains { literal.contains($0) }
            if literal.isEmpty || isExpression { continue }
            return unescapeJinjaString(String(literal))
        }
        return nil
    }

    /// Jinja string-literal escapes: \n \t \r \\ \' \".
    private static func unescapeJinjaString(_ text: String) -> String {
        var out = ""
        var escaping = false
        for ch in text {
            if escaping {
                switch ch {
                case "n": out.append("\n")
                case "t": out.append("\t")
                case "r": out.append("\r")
                default: out.append(ch)
                }
                escaping = false
            } else if ch == "\\" {
                escaping = true
            } else {
                out.append(ch)
            }
        }
        return out
    }

    // MARK: Rendering

    /// The prompt text for `messages`; with `addGenerationPrompt`, ends with the opening of an
    /// assistant turn (formats whose assistant turn simply follows `[/INST]` add nothing).
    package func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) -> String {
        renderMarked(messages, addGenerationPrompt: addGenerationPrompt).text
    }

    /// The same text, with where the messages' contents lie: special-token text inside a content is a
    /// user's text, not markup (`Tokenizer.encode(_: RenderedChat)`), so nobody can forge another role's turn.
    package func renderMarked(_ messages: [ChatMessage], addGenerationPrompt: Bool) -> RenderedChat {
        var out = RenderedChat()
        switch self {
        case .chatml(let defaultSystemPrompt):
            if let defaultSystemPrompt, let first = messages.first, first.role != "system" {
                out += "<|im_start|>system\n\(defaultSystemPrompt)<|im_end|>\n"
            }
            for m in messages {
                out += "<|im_start|>\(m.role)\n"
                out.content(m.content, markup: m.markup)
                out += "<|im_end|>\n"
            }
            if addGenerationPrompt { out += "<|im_start|>assistant\n" }

        case .llama3:
            for m in messages {
                out += "<|start_header_id|>\(m.role)<|end_header_id|>\n\n"
                out.content(trim(m.content))
                out += "<|eot_id|>"
            }
            if addGenerationPrompt { out += "<|start_header_id|>assistant<|end_header_id|>\n\n" }

        case .llama2(let style):
            let strip = style == .systemStripped
            var insideTurn = true
            out += "[INST] "
            for m in messages {
                let content = strip ? trim(m.content) : m.content
                if !insideTurn {
                    insideTurn = true
                    out += style == .systemWithBOS ? "<s>[INST] " : "[INST] "
                }
                switch m.role {
                case "system":
                    if style == .plain {
                        out.content(content)
                        out += "\n"
                    } else {
                        out += "<<SYS>>\n"
                        out.content(content)
                        out += "\n<</SYS>>\n\n"
                    }
                case "user":
                    out.content(content)
                    out += " [/INST]"
                default:
                    out.content(content)
                    out += "</s>"
                    insideTurn = false
                }
            }

        case .mistral(let style) where style == .v7 || style == .v7Tekken:
            let space = style == .v7 ? " " : ""
            for m in messages {
                switch m.role {
                case "system": out += "[SYSTEM_PROMPT]\(space)"; out.content(m.content); out += "[/SYSTEM_PROMPT]"
                case "user": out += "[INST]\(space)"; out.content(m.content); out += "[/INST]"
                default: out += space; out.content(m.content); out += "</s>"
                }
            }

        case .mistral(let style):
            let leading = style == .v1 ? " " : ""
            let trailing = style == .v3Tekken ? "" : " "
            var insideTurn = false
            for m in messages {
                if !insideTurn {
                    out += "\(leading)[INST]\(trailing)"
                    insideTurn = true
                }
                switch m.role {
                case "system": out.content(m.content); out += "\n\n"
                case "user": out.content(m.content); out += "\(leading)[/INST]"
                default:
                    out += trailing
                    out.content(style == .v3 ? trim(m.content) : m.content)
                    out += "</s>"
                    insideTurn = false
                }
            }

        case .gemma:
            var system = ""
            for m in messages {
                if m.role == "system" {
                    system += trim(m.content)
                    continue
                }
                let role = m.role == "assistant" ? "model" : m.role
                out += "<start_of_turn>\(role)\n"
                if !system.isEmpty && role != "model" {
                    out.content(system)
                    out += "\n\n"
                    system = ""
                }
                out.content(trim(m.content))
                out += "<end_of_turn>\n"
            }
            if addGenerationPrompt { out += "<start_of_turn>model\n" }

        case .phi3:
            for m in messages {
                out += "<|\(m.role)|>\n"
                out.content(m.content)
                out += "<|end|>\n"
            }
            if addGenerationPrompt { out += "<|assistant|>\n" }

        case .zephyr(let endOfTurn):
            for m in messages {
                out += "<|\(m.role)|>\n"
                out.content(m.content)
                out += "\(endOfTurn)\n"
            }
            if addGenerationPrompt { out += "<|assistant|>\n" }
        }
        return out
    }

    /// C isspace trimming, as llama.cpp's trim().
    private func trim(_ text: String) -> String {
        let isSpace: (Unicode.Scalar) -> Bool = { [" ", "\t", "\n", "\r", "\u{0B}", "\u{0C}"].contains($0) }
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !isSpace($0) }),
              let last = scalars.lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(scalars[first...last])
    }
}

/// A rendered chat prompt: the text, and the UTF-8 byte ranges that hold message contents (everything
/// else is the template's markup).
package struct RenderedChat: Sendable, Equatable {
    package private(set) var text = ""
    package private(set) var contentRanges: [Range<Int>] = []

    package init() {}

    /// Markup: its special-token text is special tokens.
    package static func += (chat: inout RenderedChat, markup: String) {
        chat.text += markup
    }

    /// A message's content: its special-token text stays text, except in the `markup` stretches (UTF-8
    /// offsets into `content`, ascending) the server wrote.
    package mutating func content(_ content: String, markup: [Range<Int>] = []) {
        let start = text.utf8.count
        text += content
        var at = 0
        for stretch in markup + [content.utf8.count..<content.utf8.count] {
            if stretch.lowerBound > at { contentRanges.append(start + at..<start + stretch.lowerBound) }
            at = max(at, stretch.upperBound)
        }
    }
}

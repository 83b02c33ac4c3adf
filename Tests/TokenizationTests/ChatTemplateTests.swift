// Chat templates: recognition by markers, the ChatML default system prompt read from the template
// text, each format's rendering and system-prompt behaviour, names, and the ChatML fallback warning.

import Testing
@testable import Tokenization

@Suite struct ChatTemplateTests {
    static let conversation = [
        ChatMessage(role: "system", content: "Be brief."),
        ChatMessage(role: "user", content: "Hi"),
        ChatMessage(role: "assistant", content: "Hello!"),
        ChatMessage(role: "user", content: "2+2?"),
    ]
    static let userOnly = [ChatMessage(role: "user", content: "Hi")]

    static let smolLM2 = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    static let qwen25 = #"{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}{%- else %}{{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}{%- endif %}{%- for message in messages %}{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}{%- endfor %}"#
    static let qwen3 = #"{%- for message in messages %}{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}"#
    static let llama3 = "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    static let llama2 = "{% if messages[0]['role'] == 'system' %}{% set system_message = '<<SYS>>\\n' + messages[0]['content'] + '\\n<</SYS>>\\n\\n' %}{% endif %}{{ bos_token + '[INST] ' + content + ' [/INST]' }}"
    static let mistralV7 = "{{ '[SYSTEM_PROMPT]' + system + '[/SYSTEM_PROMPT]' }}{{ '[INST]' + m + '[/INST]' }}"
    static let gemma = "{{ bos_token }}{% for message in messages %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    static let phi3 = "{% for message in messages %}{{'<|' + message['role'] + '|>' + '\n' + message['content'] + '<|end|>\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
    static let zephyr = "{% for message in messages %}{% if message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + eos_token }}{% endif %}{% endfor %}{{ '<|assistant|>' }}"

    @Test func smolLM2InsertsItsOwnDefaultSystemPrompt() {
        let detection = ChatTemplate.detect(Self.smolLM2)
        #expect(detection == ChatTemplate.Detection(
            template: .chatml(defaultSystemPrompt: "You are a helpful AI assistant named SmolLM, trained by Hugging Face"),
            fellBack: false, warning: nil))
        #expect(detection.template.render(Self.userOnly, addGenerationPrompt: false)
            == "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n")
        // A given system message replaces the default.
        #expect(detection.template.render(Array(Self.conversation.prefix(2)), addGenerationPrompt: true)
            == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        #expect(detection.template.render([], addGenerationPrompt: false) == "")
    }

    @Test func qwenDefaultsAreReadFromEscapedTemplateText() {
        #expect(ChatTemplate(detecting: Self.qwen25)
            == .chatml(defaultSystemPrompt: "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."))
        #expect(ChatTemplate(detecting: Self.qwen3) == .chatml(defaultSystemPrompt: nil))
        #expect(ChatTemplate(detecting: Self.qwen3).render(Self.userOnly, addGenerationPrompt: true)
            == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    }

    @Test func llama3TrimsContentAndKeepsTheSystemTurn() {
        let template = ChatTemplate(detecting: Self.llama3)
        #expect(template == .llama3)
        let messages = [ChatMessage(role: "system", content: "Be brief."), ChatMessage(role: "user", content: "  Hi \n")]
        #expect(template.render(messages, addGenerationPrompt: true)
            == "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
    }

    /// Tools as Qwen2.5's template writes them (system turn, its default system prompt kept), earlier calls
    /// and their results (consecutive results share one user turn), and a forced call's opening.
    @Test func hermesToolsCallsAndResults() {
        let template = ChatTemplate(detecting: Self.qwen25)
        let call = ChatMessage.ToolCall(name: "add", arguments: #"{"a": 1}"#)
        let messages = [ChatMessage(role: "user", content: "Sum?"), ChatMessage(role: "assistant", content: "", toolCalls: [call, call]),
                        ChatMessage(role: "tool", content: "1"), ChatMessage(role: "tool", content: "2")]
        let tools = "<tools>\n" + #"{"type": "function", "function": {"name": "add"}}"# + "\n</tools>"
        let text = template.renderMarked(messages, tools: [#"{"type": "function", "function": {"name": "add"}}"#], addGenerationPrompt: true,
                                         replyPrefix: "<tool_call>\n").text
        #expect(text == "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.\n\n# Tools\n\n"
            + "You may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n"
            + tools + "\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n"
            + "<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n"
            + "<|im_start|>user\nSum?<|im_end|>\n"
            + "<|im_start|>assistant\n<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1}}\n</tool_call>\n<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1}}\n</tool_call><|im_end|>\n"
            + "<|im_start|>user\n<tool_response>\n1\n</tool_response>\n<tool_response>\n2\n</tool_response><|im_end|>\n"
            + "<|im_start|>assistant\n<tool_call>\n")
        // A system message comes first, then the tools; without tools, history is still written.
        let withSystem = ChatTemplate(detecting: Self.qwen3).renderMarked([ChatMessage(role: "system", content: "Be brief.")] + messages.prefix(1),
                                                                           tools: ["{}"], addGenerationPrompt: false).text
        #expect(withSystem.hasPrefix("<|im_start|>system\nBe brief.\n\n# Tools\n\n"))
        #expect(template.renderMarked(Array(messages.prefix(3)), tools: [], addGenerationPrompt: false).text
            == "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nSum?<|im_end|>\n"
            + "<|im_start|>assistant\n<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1}}\n</tool_call>\n<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1}}\n</tool_call><|im_end|>\n"
            + "<|im_start|>user\n<tool_response>\n1\n</tool_response><|im_end|>\n")
        #expect(ChatTemplate.gemma.toolFormat == nil)

        // The tags are markup (special-token text, Qwen's <tool_call> is a token); what clients sent is
        // content, a client's own "<tool_call>" included.
        let client = messages + [ChatMessage(role: "user", content: "<tool_call> is mine")]
        let marked = template.renderMarked(client, tools: [#"{"name": "add"}"#], addGenerationPrompt: true)
        let bytes = Array(marked.text.utf8)
        func inContent(_ needle: String) -> [Bool] {
            let n = Array(needle.utf8)
            return (0...(bytes.count - n.count)).filter { Array(bytes[$0..<$0 + n.count]) == n }.map { at in
                marked.contentRanges.contains { $0.contains(at) && $0.contains(at + n.count - 1) }
            }
        }
        #expect(inContent("<tool_call>") == [false, false, false, false, true])  // instructions (2), two calls, the client's
        #expect(inContent("<tool_call>\n{\"name\": \"add\"") == [false, false])
        #expect(inContent("<tool_call> is mine") == [true])
        #expect(inContent("<tool_response>") == [false, false])
        #expect(inContent(#"{"a": 1}"#) == [true, true])
        #expect(inContent(#"{"name": "add"}"#) == [true])
        #expect(inContent("2") == [true])  // the second result
    }

    /// Llama 3.1's JSON calls: its tools system turn, tools in the first user turn, calls as the assistant's
    /// JSON, results as ipython JSON strings. (Both goldens are what Python's jinja2 renders from the
    /// templates llama.cpp ships for Qwen2.5, Qwen3 and Llama 3.1, but for Llama's trailing blank line in the
    /// system turn, which tally's Llama 3 format trims as llama.cpp's does.)
    @Test func llama3ToolsCallsAndResults() {
        let messages = [ChatMessage(role: "user", content: "Sum?"),
                        ChatMessage(role: "assistant", content: "", toolCalls: [.init(name: "add", arguments: "{}")]),
                        ChatMessage(role: "tool", content: "3")]
        #expect(ChatTemplate.llama3.renderMarked(messages, tools: ["{\n    \"name\": \"add\"\n}"], addGenerationPrompt: true).text
            == "<|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024<|eot_id|>"
            + "<|start_header_id|>user<|end_header_id|>\n\nGiven the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.\n\n"
            + "Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}.Do not use variables.\n\n"
            + "{\n    \"name\": \"add\"\n}\n\nSum?<|eot_id|>"
            + "<|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"add\", \"parameters\": {}}<|eot_id|>"
            + "<|start_header_id|>ipython<|end_header_id|>\n\n\"3\"<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
        #expect(ChatTemplate.jsonString("a\"b\\\n\u{01}é") == #""a\"b\\\n\u0001é""#)
    }

    @Test func llama2PutsTheSystemPromptInsideTheFirstInstruction() {
        let template = ChatTemplate(detecting: Self.llama2)
        #expect(template == .llama2(.systemWithBOS))
        #expect(template.render(Self.conversation, addGenerationPrompt: true)
            == "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]Hello!</s><s>[INST] 2+2? [/INST]")
        #expect(ChatTemplate.llama2(.plain).render(Self.conversation, addGenerationPrompt: true)
            == "[INST] Be brief.\nHi [/INST]Hello!</s>[INST] 2+2? [/INST]")
    }

    @Test func mistralFormats() {
        #expect(ChatTemplate(detecting: Self.mistralV7) == .mistral(.v7))
        #expect(ChatTemplate.mistral(.v7).render(Self.conversation, addGenerationPrompt: true)
            == "[SYSTEM_PROMPT] Be brief.[/SYSTEM_PROMPT][INST] Hi[/INST] Hello!</s>[INST] 2+2?[/INST]")
        #expect(ChatTemplate.mistral(.v3).render(Self.conversation, addGenerationPrompt: true)
            == "[INST] Be brief.\n\nHi[/INST] Hello!</s>[INST] 2+2?[/INST]")
        #expect(ChatTemplate.mistral(.v1).render(Self.conversation, addGenerationPrompt: true)
            == " [INST] Be brief.\n\nHi [/INST] Hello!</s> [INST] 2+2? [/INST]")
    }

    @Test func gemmaFoldsTheSystemPromptIntoTheFirstUserTurn() {
        let template = ChatTemplate(detecting: Self.gemma)
        #expect(template == .gemma)
        #expect(template.render(Self.conversation, addGenerationPrompt: true)
            == "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n<start_of_turn>user\n2+2?<end_of_turn>\n<start_of_turn>model\n")
    }

    @Test func phi3AndZephyr() {
        #expect(ChatTemplate(detecting: Self.phi3) == .phi3)
        #expect(ChatTemplate.phi3.render(Array(Self.conversation.prefix(2)), addGenerationPrompt: true)
            == "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\n")
        let zephyr = ChatTemplate(detecting: Self.zephyr)
        #expect(zephyr == .zephyr(endOfTurn: "</s>"))
        #expect(zephyr.render(Array(Self.conversation.prefix(2)), addGenerationPrompt: true)
            == "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\n")
    }

    @Test func unknownOrMissingTemplatesFallBackToChatMLWithAWarning() {
        for source in [nil, "", "{{ messages }} plain jinja with no markers"] as [String?] {
            let detection = ChatTemplate.detect(source)
            #expect(detection.template == .chatml(defaultSystemPrompt: nil))
            #expect(detection.fellBack)
            #expect(detection.warning?.contains("--chat-template") == true)
        }
    }

    @Test func namesSelectTemplatesExplicitly() throws {
        for name in ChatTemplate.names {
            let template = try #require(ChatTemplate(name: name), "\(name)")
            #expect(ChatTemplate(name: template.name) == template || name == "mistral", "\(name)")
            #expect(ChatTemplate.detect(name).template == template)
        }
        #expect(ChatTemplate(name: "gemma") == .gemma)
        #expect(throws: TokenizationError.unknownChatTemplate("vicuna", known: ChatTemplate.names)) {
            try ChatTemplate.named("vicuna")
        }
        #expect(TokenizationError.unknownChatTemplate("vicuna", known: ChatTemplate.names).description.contains("--chat-template"))
    }
}

// JSON schemas compiled to grammars: the recognizer accepts documents valid against the schema and
// refuses (or never completes) those that are not; keywords it cannot enforce, and strict mode's rules,
// are refused with a 400 naming the parameter. The same schemas against the real model, validated by
// Python's jsonschema, are in Tests/EndToEnd/test_structured_output.py.

import Foundation
@testable import OpenAIServer
import Sampling
import Testing

@Suite struct StructuredOutputTests {
    static let param = "response_format.json_schema.schema"

    func grammar(_ schema: String, strict: Bool = false) throws -> JSONGrammar {
        try SchemaCompiler.compile(try JSON(parsing: Array(schema.utf8)), strict: strict, param: Self.param)
    }

    /// Whether the whole text is accepted and completes the document.
    func allows(_ g: JSONGrammar, _ text: String) -> Bool {
        var r = JSONRecognizer(grammar: g)
        for b in text.utf8 where !r.accept(b) { return false }
        return r.isComplete
    }

    static let person = #"""
    {"type": "object", "properties": {"name": {"type": "string", "maxLength": 5}, "age": {"type": "integer"},
     "role": {"enum": ["admin", "user", 3]}, "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
     "boss": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/ref"}]}},
     "required": ["name", "age", "role", "tags", "boss"], "additionalProperties": false,
     "$defs": {"ref": {"type": "object", "properties": {"id": {"type": ["integer", "string"]}}, "required": ["id"], "additionalProperties": false}}}
    """#

    @Test func documentsValidAgainstTheSchemaAreAllowedAndOthersAreNot() throws {
        let g = try grammar(Self.person, strict: true)
        for valid in [#"{"name":"Ada","age":36,"role":"admin","tags":["x"],"boss":null}"#,
                      #"{ "name" : "Ådäm", "age": -0, "role": 3, "tags": ["a", "b"], "boss": {"id": 7} }"#,
                      #"{"name":"","age":12,"role":"user","tags":["\u00e9"],"boss":{"id":"x"}}"#] {
            #expect(allows(g, valid), "\(valid)")
        }
        for invalid in [#"{"age":36,"name":"Ada","role":"admin","tags":["x"],"boss":null}"#,  // out of order
                        #"{"name":"Adaline","age":36,"role":"admin","tags":["x"],"boss":null}"#,  // too long
                        #"{"name":"Ada","age":36.5,"role":"admin","tags":["x"],"boss":null}"#,  // not an integer
                        #"{"name":"Ada","age":36,"role":"root","tags":["x"],"boss":null}"#,  // not in the enum
                        #"{"name":"Ada","age":36,"role":"admin","tags":[],"boss":null}"#,  // too few items
                        #"{"name":"Ada","age":36,"role":"admin","tags":["x","y","z"],"boss":null}"#,  // too many
                        #"{"name":"Ada","age":36,"role":"admin","tags":["x"],"boss":{"id":true}}"#,
                        #"{"name":"Ada","age":36,"role":"admin","tags":["x"]}"#,  // a required property missing
                        #"{"name":"Ada","age":36,"role":"admin","tags":["x"],"boss":null,"x":1}"#] {
            #expect(!allows(g, invalid), "\(invalid)")
        }
    }

    @Test func optionalPropertiesMayBeSkippedButNotReordered() throws {
        let g = try grammar(#"{"properties": {"a": {"type": "integer"}, "b": {"type": "integer"}, "c": {"type": "integer"}}, "required": ["c"]}"#)
        for valid in [#"{"c":1}"#, #"{"a":1,"c":2}"#, #"{"b":1,"c":2}"#, #"{"a":1,"b":2,"c":3}"#] { #expect(allows(g, valid), "\(valid)") }
        for invalid in [#"{}"#, #"{"a":1}"#, #"{"b":1,"a":2,"c":3}"#, #"{"c":1,"a":2}"#] { #expect(!allows(g, invalid), "\(invalid)") }
    }

    @Test func recursiveReferencesAndFreeValues() throws {
        let tree = try grammar(##"{"$defs": {"node": {"type": "object", "properties": {"v": {"type": "number"}, "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}}, "required": ["v", "kids"]}}, "$ref": "#/$defs/node"}"##)
        #expect(allows(tree, #"{"v":1,"kids":[{"v":2.5e3,"kids":[]},{"v":-1,"kids":[{"v":0,"kids":[]}]}]}"#))
        #expect(!allows(tree, #"{"v":1,"kids":[{"v":2}]}"#))
        let free = try grammar(#"{"type": "object", "properties": {"meta": {}, "map": {"type": "object", "additionalProperties": {"type": "boolean"}}}, "required": ["meta", "map"]}"#)
        #expect(allows(free, #"{"meta":[1,{"x":null}],"map":{"a":true,"b":false}}"#))
        #expect(!allows(free, #"{"meta":1,"map":{"a":1}}"#))
    }

    /// Random documents the recognizer allows (bytes drawn from a small alphabet among those it accepts)
    /// parse as JSON with the schema's keys in order.
    @Test func randomAllowedDocumentsAreJSONWithTheSchemasKeys() throws {
        let g = try grammar(Self.person, strict: true)
        let alphabet = Array(UInt8(0x20)..<0x7F) + [0x0A]
        var random = SystemRandomNumberGenerator()
        var finished = 0
        for _ in 0..<80 {
            var r = JSONRecognizer(grammar: g)
            var text: [UInt8] = []
            while !r.isComplete && text.count < 400 {
                let choices = alphabet.filter { var s = r; return s.accept($0) }
                // Closing bytes half the time, so that most walks end.
                let closers = choices.filter { Array(#""}]"#.utf8).contains($0) }
                guard let b = (Bool.random(using: &random) ? closers.randomElement(using: &random) : nil) ?? choices.randomElement(using: &random) else { break }
                _ = r.accept(b)
                text.append(b)
            }
            #expect(!text.isEmpty)
            guard r.isComplete else { continue }
            finished += 1
            let object = try #require(try JSONSerialization.jsonObject(with: Data(text)) as? [String: Any], "\(String(decoding: text, as: UTF8.self))")
            #expect(Set(object.keys) == ["name", "age", "role", "tags", "boss"])
            #expect((object["name"] as? String).map { $0.count <= 5 } == true)
        }
        #expect(finished > 10)
    }

    /// 20 levels of references, each anyOf of the one below twice: 2^20 ways to start a value.
    static let exponentialAnyOf: String = {
        let defs = (1..<20).map { ##""d\##($0)": {"anyOf": [{"$ref": "#/$defs/d\##($0 - 1)"}, {"$ref": "#/$defs/d\##($0 - 1)"}]}"## }
        return ##"{"$defs": {"d0": {"type": "object"}, "## + defs.joined(separator: ", ") + ##"}, "$ref": "#/$defs/d19"}"##
    }()

    @Test func whatTheGrammarCannotEnforceIsRefusedByName() throws {
        for (schema, words) in [(#"{"type": "object", "properties": {"a": {"type": "string", "pattern": "^a"}}}"#, "pattern"),
                                (#"{"type": "object", "properties": {"a": {"type": "integer", "minimum": 0}}}"#, "minimum"),
                                (#"{"type": "object", "properties": {"a": {"oneOf": [{"type": "string"}]}}}"#, "oneOf"),
                                (#"{"type": "array"}"#, "root must be an object"),
                                (##"{"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}"##, "#/$defs/missing"),
                                (##"{"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}"##, "go round"),
                                (#"{"type": "object", "properties": {"a": {"type": "date"}}}"#, "not one of"),
                                (Self.exponentialAnyOf, "multiply"),
                                (#"{"type": "object", "properties": {"a": {"type": "string", "maxLength": 1, "minLength": 2}}}"#, "maxLength")] {
            #expect(throws: APIError.self) { try grammar(schema) }
            do {
                _ = try grammar(schema)
            } catch let error as APIError {
                #expect(error.message.contains(words) && error.param == Self.param, "\(error.message)")
            }
        }
        // Strict mode: OpenAI's rules.
        #expect(throws: APIError.self) { try grammar(#"{"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false}"#, strict: true) }
        #expect(throws: APIError.self) { try grammar(#"{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}"#, strict: true) }
        #expect(throws: Never.self) { try grammar(#"{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": false}"#, strict: true) }
    }

    @Test func theParserKeepsKeyOrderAndRefusesWhatIsNotJSON() throws {
        let value = try JSON(parsing: Array(#" {"z": 1, "a": [true, null, -2.5e1, "\u00e9\n\ud83d\ude00\ud83d\uda00"], "m": {}} "#.utf8))
        #expect(value == .object([("z", .int(1)), ("a", .array([.bool(true), .null, .double(-25), .string("é\n😀\u{FFFD}\u{FFFD}")])), ("m", .object([]))]))
        for bad in [#"{"a":1,}"#, #"{"a" 1}"#, #"[1] x"#, #""abc"#, "[" + String(repeating: "[", count: 600) + "]"] {
            #expect(throws: APIError.self, "\(bad)") { try JSON(parsing: Array(bad.utf8)) }
        }
    }
}

/// Finding the tool call in a reply, whole or streamed.
@Suite struct ToolCallReplyTests {
    @Test func aReplysCallIsFoundAndItsArgumentsMadeCompact() throws {
        let auto = ToolCallPlan(format: .hermes, forced: false)
        let (content, call) = try #require(auto.split("Let me look.\n<tool_call>\n{\"name\": \"get\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"))
        #expect(content == "Let me look." && call.name == "get" && call.arguments == #"{"city":"Paris"}"# && call.id.hasPrefix("call_"))
        #expect(auto.split("No call here.") == nil)
        #expect(auto.split("<tool_call>\n{\"name\": \"get\", \"argu") == nil)  // cut by max_tokens
        let forced = ToolCallPlan(format: .llama3, forced: true)
        #expect(forced.split(#"{"name": "f", "parameters": {}}"#)?.call.arguments == "{}")
        #expect(forced.split(#"{"name": "f", "arguments": {}}"#) == nil)  // Llama's key is "parameters"
        #expect(ToolCallPlan(format: .llama3, forced: false).split(#"Here: {"name": "f", "parameters": [1]}"#)?.content == "Here:")
    }

    @Test func aStreamedReplyHoldsBackWhatMayOpenACall() {
        var hold = ToolCallHold(plan: ToolCallPlan(format: .hermes, forced: false))
        #expect(hold.append("Let me ") == "Let me ")
        #expect(hold.append("look <tool") == "look ")  // a possible opening is held
        #expect(hold.append("_call>\n{\"name\": \"f\", ") == "")
        #expect(hold.append("\"arguments\": {}}") == "")
        let (rest, call) = hold.finish()
        #expect(rest == "" && call?.name == "f")
        // Held text that never became a call goes out at the end.
        var text = ToolCallHold(plan: ToolCallPlan(format: .hermes, forced: false))
        #expect(text.append("a <tool") == "a ")
        #expect(text.finish().0 == "<tool" && text.finish().1 == nil)
        var forced = ToolCallHold(plan: ToolCallPlan(format: .hermes, forced: true))
        #expect(forced.append("{\"name\": \"f\", \"arguments\": {\"x\": 1}}") == "")
        #expect(forced.finish().1?.arguments == #"{"x":1}"#)
    }

    /// A call's grammar: one of the tools by name, each with its own parameters (and its own $defs).
    @Test func theCallGrammarTakesOnlyTheToolsAndTheirParameters() throws {
        let add = try JSON(parsing: Array(##"{"type": "object", "properties": {"a": {"$ref": "#/$defs/n"}}, "required": ["a"], "$defs": {"n": {"type": "integer"}}}"##.utf8))
        let g = try SchemaCompiler.compileCall(tools: [("add", add), ("noop", nil)], argumentsKey: "arguments", strict: false)
        func allows(_ text: String) -> Bool {
            var r = JSONRecognizer(grammar: g)
            for b in text.utf8 where !r.accept(b) { return false }
            return r.isComplete
        }
        #expect(allows(#"{"name": "add", "arguments": {"a": 2}}"#))
        #expect(allows(#"{"name":"noop","arguments":{"anything":[1]}}"#))
        #expect(!allows(#"{"name": "add", "arguments": {"a": "2"}}"#))
        #expect(!allows(#"{"name": "sub", "arguments": {}}"#))
        #expect(!allows(#"{"arguments": {}, "name": "noop"}"#))
    }
}

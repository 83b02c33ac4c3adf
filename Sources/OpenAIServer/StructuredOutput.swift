// `response_format: {"type": "json_schema", ...}` (and tools' parameters): a JSON schema compiled once into
// the grammar that constrains sampling (Sampling/JSONGrammar.swift). Supported: type (one or a list),
// properties and required (written in the schema's order), additionalProperties (false; or a schema, for
// an object without properties), items, minItems, maxItems, minLength, maxLength, enum, const, anyOf, a
// one-item allOf, and $ref into $defs or definitions (recursion included). A keyword the grammar cannot
// enforce (pattern, format, minimum, oneOf...) is refused with a 400 naming it, never silently ignored:
// every reply that stops is valid against the schema.
//
// With `strict: true` the schema must also be in OpenAI's strict subset: every object lists all its
// properties as required and sets additionalProperties to false.

import Sampling
import Synchronization

package struct SchemaCompiler {
    /// Most nodes a schema may compile to, and deepest nesting of schemas (OpenAI allows 5,000 properties
    /// and 10 levels of nesting; this is looser).
    static let maxNodes = 10_000
    static let maxDepth = 64
    static let maxEnumValues = 1_000

    /// Validation keywords the grammar does not enforce.
    static let unsupported: [String: String] = [
        "pattern": "regular expressions", "format": "string formats", "patternProperties": "key patterns",
        "propertyNames": "key schemas", "minimum": "number bounds", "maximum": "number bounds",
        "exclusiveMinimum": "number bounds", "exclusiveMaximum": "number bounds", "multipleOf": "multiples",
        "oneOf": "exclusive alternatives (use anyOf)", "not": "negation", "if": "conditionals", "then": "conditionals",
        "else": "conditionals", "uniqueItems": "unique items", "contains": "contains", "minContains": "contains",
        "maxContains": "contains", "prefixItems": "tuples", "minProperties": "property counts",
        "maxProperties": "property counts", "dependentRequired": "dependencies", "dependentSchemas": "dependencies",
        "dependencies": "dependencies", "unevaluatedProperties": "unevaluated properties",
        "unevaluatedItems": "unevaluated items", "additionalItems": "tuples", "$dynamicRef": "dynamic references",
    ]

    private var nodes = JSONGrammar.builtins
    private var root: JSON
    private let strict: Bool
    private var param: String
    /// Nodes of `$ref` targets already compiled (or being compiled: a recursive reference finds its own).
    private var references: [String: Int] = [:]

    /// Compiles `schema` (whose root must be an object); errors are 400s naming `param`.
    package static func compile(_ schema: JSON, strict: Bool, param: String) throws -> JSONGrammar {
        var compiler = SchemaCompiler(root: schema, strict: strict, param: param)
        let root = try compiler.node(schema, path: "", depth: 0)
        guard !compiler.hasEmptyCycle() else {
            throw APIError.invalid("the schema's references go round without an object or array between them", param: param)
        }
        guard !compiler.hasTooManyAlternatives() else {
            throw APIError.invalid("the schema's nested anyOf alternatives multiply to more than \(maxAlternatives)", param: param)
        }
        guard compiler.isObject(root) else {
            throw APIError.invalid("the schema's root must be an object (\"type\": \"object\")", param: param)
        }
        return JSONGrammar(nodes: compiler.nodes, root: root)
    }

    /// A tool call's grammar: `{"name": <one of the tools>, "<argumentsKey>": <its parameters>}`. Each
    /// tool's parameters are a schema of their own (their `$ref`s are theirs); no parameters: any object.
    static func compileCall(tools: [(name: String, parameters: JSON?)], argumentsKey: String, strict: Bool) throws -> JSONGrammar {
        var compiler = SchemaCompiler(root: .null, strict: strict, param: "tools")
        var calls: [Int] = []
        for (i, tool) in tools.enumerated() {
            compiler.root = tool.parameters ?? .null
            compiler.references = [:]
            var arguments = JSONGrammar.anyDictionary
            if let parameters = tool.parameters {
                let param = "tools[\(i)].function.parameters"
                compiler.param = param
                arguments = try compiler.node(parameters, path: "", depth: 0)
                guard !compiler.hasEmptyCycle() else { throw APIError.invalid("the schema's references go round without an object or array between them", param: param) }
                guard !compiler.hasTooManyAlternatives() else {
                    throw APIError.invalid("the schema's nested anyOf alternatives multiply to more than \(maxAlternatives)", param: param)
                }
                guard compiler.isObject(arguments) else { throw APIError.invalid("the parameters must be an object schema (\"type\": \"object\")", param: param) }
            }
            let name = try compiler.add(.literals([Array(JSON.string(tool.name).serialized.utf8)]), "")
            calls.append(try compiler.add(.object([.init(key: Array("\"name\"".utf8), value: name, required: true),
                                                   .init(key: Array(JSON.string(argumentsKey).serialized.utf8), value: arguments, required: true)]), ""))
        }
        let root = calls.count == 1 ? calls[0] : try compiler.add(.anyOf(calls), "")
        return JSONGrammar(nodes: compiler.nodes, root: root)
    }

    private init(root: JSON, strict: Bool, param: String) {
        self.root = root
        self.strict = strict
        self.param = param
    }

    private func fail(_ path: String, _ message: String) -> APIError {
        .invalid("\(path.isEmpty ? "the schema" : "the schema at \(path)") \(message)", param: param)
    }

    /// Most alternatives a value may start as once nested anyOfs (and references to them) are multiplied
    /// out: the recognizer tries each at the value's first byte.
    static let maxAlternatives = 256

    /// Whether some anyOf node multiplies out to more than `maxAlternatives` (needs no empty cycle).
    private func hasTooManyAlternatives() -> Bool {
        var memo = [Int?](repeating: nil, count: nodes.count)
        func paths(_ i: Int) -> Int {
            if let known = memo[i] { return known }
            guard case .anyOf(let alternatives) = nodes[i] else { return 1 }
            let n = alternatives.reduce(0) { min(Self.maxAlternatives + 1, $0 + paths($1)) }
            memo[i] = n
            return n
        }
        return nodes.indices.contains { paths($0) > Self.maxAlternatives }
    }

    /// Whether anyOf nodes (references included) lead back to themselves without a value between: a
    /// value of such a node could never begin.
    private func hasEmptyCycle() -> Bool {
        var state = [UInt8](repeating: 0, count: nodes.count)  // 0 unvisited, 1 on the path, 2 done
        func visit(_ i: Int) -> Bool {
            guard case .anyOf(let alternatives) = nodes[i] else { return false }
            if state[i] == 1 { return true }
            if state[i] == 2 { return false }
            state[i] = 1
            defer { state[i] = 2 }
            return alternatives.contains(where: visit)
        }
        return nodes.indices.contains(where: visit)
    }

    private func isObject(_ index: Int) -> Bool {
        switch nodes[index] {
        case .object, .dictionary: true
        case .anyOf(let alternatives): alternatives.allSatisfy(isObject)
        default: false
        }
    }

    private mutating func add(_ node: JSONGrammar.Node, _ path: String) throws -> Int {
        guard nodes.count < Self.maxNodes else { throw fail(path, "makes the schema larger than \(Self.maxNodes) nodes") }
        nodes.append(node)
        return nodes.count - 1
    }

    /// The node index of a schema.
    private mutating func node(_ schema: JSON, path: String, depth: Int) throws -> Int {
        guard depth < Self.maxDepth else { throw fail(path, "nests deeper than \(Self.maxDepth) levels") }
        if case .bool(true) = schema { return 0 }
        guard case .object(let members) = schema else { throw fail(path, "must be an object (or true)") }
        let keywords = Set(members.map(\.0))
        if let bad = members.map(\.0).first(where: { Self.unsupported[$0] != nil }) {
            throw fail(path, "uses \(bad) (\(Self.unsupported[bad]!)), which this server cannot enforce; remove it")
        }
        if case .string(let ref)? = schema["$ref"] { return try reference(ref, path: path, depth: depth) }
        if let allOf = schema["allOf"] {
            guard case .array(let parts) = allOf, parts.count == 1, keywords.subtracting(Self.annotations).subtracting(["allOf"]).isEmpty else {
                throw fail(path, "uses allOf with more than one schema, which this server cannot enforce; merge them")
            }
            return try node(parts[0], path: path + "/allOf/0", depth: depth + 1)
        }
        if let values = schema["enum"] {
            guard case .array(let list) = values, !list.isEmpty, list.count <= Self.maxEnumValues else {
                throw fail(path + "/enum", "must be a list of 1 to \(Self.maxEnumValues) values")
            }
            return try add(.literals(list.map { Array($0.serialized.utf8) }), path)
        }
        if let value = schema["const"] { return try add(.literals([Array(value.serialized.utf8)]), path) }
        if let anyOf = schema["anyOf"] {
            guard case .array(let parts) = anyOf, !parts.isEmpty else { throw fail(path + "/anyOf", "must be a list of schemas") }
            let index = try add(.any, path)
            var alternatives: [Int] = []
            for (i, part) in parts.enumerated() { alternatives.append(try node(part, path: path + "/anyOf/\(i)", depth: depth + 1)) }
            nodes[index] = .anyOf(alternatives)
            return index
        }
        switch schema["type"] {
        case nil:
            // No type: implied by the keywords present, else any value.
            if schema["properties"] != nil || schema["additionalProperties"] != nil { return try typed("object", schema, path, depth) }
            if schema["items"] != nil { return try typed("array", schema, path, depth) }
            return 0
        case .string(let type)?:
            return try typed(type, schema, path, depth)
        case .array(let types)?:
            var alternatives: [Int] = []
            for type in types {
                guard case .string(let name) = type else { throw fail(path + "/type", "must be a type name or a list of them") }
                alternatives.append(try typed(name, schema, path, depth))
            }
            guard !alternatives.isEmpty else { throw fail(path + "/type", "is an empty list") }
            return alternatives.count == 1 ? alternatives[0] : try add(.anyOf(alternatives), path)
        default:
            throw fail(path + "/type", "must be a type name or a list of them")
        }
    }

    /// Keywords that describe and do not constrain.
    static let annotations: Set<String> = ["title", "description", "default", "examples", "$schema", "$id", "$comment",
                                           "deprecated", "readOnly", "writeOnly", "$defs", "definitions"]

    private mutating func typed(_ type: String, _ schema: JSON, _ path: String, _ depth: Int) throws -> Int {
        func count(_ key: String) throws -> Int? {
            guard let value = schema[key] else { return nil }
            guard case .int(let n) = value, n >= 0 else { throw fail(path + "/" + key, "must be a non-negative integer") }
            return n
        }
        switch type {
        case "object":
            let additional = schema["additionalProperties"]
            guard let properties = schema["properties"] else {
                if case .bool(false)? = additional { return try add(.object([]), path) }
                if strict { throw fail(path, "is an object without properties, which strict mode does not allow") }
                guard let additional, additional != .bool(true) else { return try add(.dictionary(values: 0), path) }
                let index = try add(.any, path)
                nodes[index] = .dictionary(values: try node(additional, path: path + "/additionalProperties", depth: depth + 1))
                return index
            }
            guard case .object(let members) = properties else { throw fail(path + "/properties", "must be an object") }
            var required: [String] = []
            if let list = schema["required"] {
                guard case .array(let names) = list else { throw fail(path + "/required", "must be a list of property names") }
                for name in names {
                    guard case .string(let s) = name, members.contains(where: { $0.0 == s }) else {
                        throw fail(path + "/required", "names \(name.serialized.prefix(64)), which is not in properties")
                    }
                    required.append(s)
                }
            }
            if strict {
                guard case .bool(false)? = additional else { throw fail(path, "must set additionalProperties to false in strict mode") }
                if let missing = members.first(where: { !required.contains($0.0) }) {
                    throw fail(path, "must list every property in required in strict mode (\(missing.0.debugDescription.prefix(64)) is not)")
                }
            }
            let index = try add(.any, path)
            var list: [JSONGrammar.Property] = []
            for (key, value) in members {
                let child = try node(value, path: path + "/properties/" + key, depth: depth + 1)
                list.append(.init(key: Array(JSON.string(key).serialized.utf8), value: child, required: required.contains(key)))
            }
            nodes[index] = .object(list)
            return index
        case "array":
            let (minItems, maxItems) = (try count("minItems") ?? 0, try count("maxItems"))
            if let maxItems, maxItems < minItems { throw fail(path, "has maxItems below minItems") }
            let index = try add(.any, path)
            let items = try schema["items"].map { try node($0, path: path + "/items", depth: depth + 1) } ?? 0
            nodes[index] = .array(items: items, minItems: minItems, maxItems: maxItems)
            return index
        case "string":
            let (minLength, maxLength) = (try count("minLength") ?? 0, try count("maxLength"))
            if let maxLength, maxLength < minLength { throw fail(path, "has maxLength below minLength") }
            return try add(.string(minLength: minLength, maxLength: maxLength), path)
        case "number": return try add(.number, path)
        case "integer": return try add(.integer, path)
        case "boolean": return JSONGrammar.anyBoolean
        case "null": return JSONGrammar.null
        default: throw fail(path + "/type", "is \(type.debugDescription.prefix(40)), not one of object, array, string, number, integer, boolean, null")
        }
    }

    /// `#`, `#/$defs/Name` or `#/definitions/Name`: compiled once, so a recursive schema refers to itself.
    private mutating func reference(_ ref: String, path: String, depth: Int) throws -> Int {
        if let index = references[ref] { return index }
        var target = root
        if ref != "#" {
            let parts = ref.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 3, parts[0] == "#", ["$defs", "definitions"].contains(parts[1]),
                  let found = root[parts[1]]?[parts[2]] else {
                throw fail(path, "refers to \(ref.debugDescription.prefix(80)), which is not #, #/$defs/<name> or #/definitions/<name> of this schema")
            }
            target = found
        }
        // A placeholder first: the target's own references to it find this index.
        let index = try add(.any, path)
        references[ref] = index
        let compiled = try node(target, path: ref, depth: depth + 1)
        nodes[index] = compiled == 0 ? .any : .anyOf([compiled])
        return index
    }
}

/// Grammars of the schemas seen lately, by their text: a schema is compiled once, not per request.
final class GrammarCache: Sendable {
    static let capacity = 64
    private let grammars = Mutex<[String: JSONGrammar]>([:])

    func grammar(_ schema: JSON, strict: Bool, param: String) throws -> JSONGrammar {
        let key = (strict ? "s" : "l") + schema.serialized
        if let cached = grammars.withLock({ $0[key] }) { return cached }
        let grammar = try SchemaCompiler.compile(schema, strict: strict, param: param)
        grammars.withLock { cache in
            if cache.count >= Self.capacity { cache.removeAll() }
            cache[key] = grammar
        }
        return grammar
    }
}

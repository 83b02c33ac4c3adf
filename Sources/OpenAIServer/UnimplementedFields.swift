// OpenAI request fields tally does not implement. A request that sets one gets a 400 naming it, never an
// answer that silently ignored what was asked (a bias, audio). A field set to null,
// or to the value that asks for nothing (`store` false, `best_of` 1), is accepted, so
// clients that always send their defaults keep working. Fields outside OpenAI's API (llama.cpp's and
// vLLM's extras such as `cache_prompt`) are ignored, as those servers ignore each other's.

/// A top-level field of a request body, by name.
struct FieldKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

struct UnimplementedField: Sendable {
    typealias Container = KeyedDecodingContainer<FieldKey>
    let name: String
    /// Why a user would send it, for the error message.
    let what: String
    /// Whether a present, non-null value asks for nothing.
    let asksForNothing: @Sendable (Container, FieldKey) -> Bool

    static func any(_ name: String, _ what: String) -> Self { Self(name: name, what: what) { _, _ in false } }

    static func empty(_ name: String, _ what: String) -> Self {
        Self(name: name, what: what) { c, key in
            if let object = try? c.nestedContainer(keyedBy: FieldKey.self, forKey: key) { return object.allKeys.isEmpty }
            if let array = try? c.nestedUnkeyedContainer(forKey: key) { return array.count == 0 }
            return false
        }
    }

    static func value<T: Decodable & Equatable & Sendable>(_ name: String, _ what: String, accepting values: [T]) -> Self {
        Self(name: name, what: what) { c, key in (try? c.decode(T.self, forKey: key)).map(values.contains) ?? false }
    }

    /// OpenAI's fields common to both endpoints that tally ignores.
    static let common: [Self] = [
        .empty("logit_bias", "per-token logit biases"),
        .value("service_tier", "a service tier", accepting: ["auto", "default"]),
        .value("store", "storing the completion", accepting: [false]),
        .empty("metadata", "stored metadata (tag requests with the X-Tally-Tags header instead)"),
    ]

    static let completions: [Self] = common + [
        .value("best_of", "best-of-n sampling", accepting: [1]),
        .value("suffix", "insertion after a suffix", accepting: [""]),
    ]

    static let chat: [Self] = common + [
        .empty("functions", "function calling"),
        .value("function_call", "function calling", accepting: ["none"]),
        .value("modalities", "output modalities other than text", accepting: [["text"]]),
        .any("audio", "audio output"),
        .any("prediction", "predicted outputs"),
        .any("reasoning_effort", "reasoning effort"),
        .any("verbosity", "verbosity control"),
        .any("web_search_options", "web search"),
    ]

    /// Throws a 400 naming the first field in `fields` the body sets to something tally would ignore.
    static func refuse(_ fields: [Self], in decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: FieldKey.self)
        for field in fields {
            let key = FieldKey(stringValue: field.name)
            guard c.contains(key), try !c.decodeNil(forKey: key), !field.asksForNothing(c, key) else { continue }
            throw APIError.invalid("\(field.name) (\(field.what)) is not implemented by this server; remove it from the request",
                                   param: field.name, code: "unsupported_parameter")
        }
    }
}

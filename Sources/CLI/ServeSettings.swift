// `tally serve`'s settings from the environment and a config file, under its flags: every flag --some-flag is
// also TALLY_SOME_FLAG, and a key "some-flag" (or "some_flag") of the JSON file `--config FILE` (or
// $TALLY_CONFIG). Flags on the command line win over the environment, which wins over the file. They become
// ordinary arguments ahead of the command line's, so ArgumentParser checks them as it checks flags.

import ArgumentParser
import Foundation

enum ServeSettings {
    /// A serve flag: its name without dashes and whether it takes a value, several values or none.
    struct FlagShape: Equatable {
        enum Kind { case value, values, toggle }
        var name: String
        var kind: Kind
    }

    /// Serve's flags, read off its properties (and its option groups') so a new flag is covered without a list.
    static let flags: [FlagShape] = shapes(of: Serve()) + shapes(of: PricingOptions())

    static func shapes(of arguments: Any) -> [FlagShape] {
        Mirror(reflecting: arguments).children.compactMap { child -> FlagShape? in
            guard let label = child.label, label.hasPrefix("_") else { return nil }
            let type = String(describing: Swift.type(of: child.value))
            let name = kebab(String(label.dropFirst()))
            if type.hasPrefix("Flag<") { return FlagShape(name: name, kind: .toggle) }
            if type.hasPrefix("Option<Array<") { return FlagShape(name: name, kind: .values) }
            if type.hasPrefix("Option<") { return FlagShape(name: name, kind: .value) }
            return nil
        }
    }

    static func kebab(_ camel: String) -> String {
        camel.reduce(into: "") { out, c in
            if c.isUppercase { out += "-" + c.lowercased() } else { out.append(c) }
        }
    }

    /// Serve's arguments with the config file's and the environment's settings put in front of them.
    static func arguments(commandLine: [String], environment: [String: String]) throws -> [String] {
        let given = Set(commandLine.compactMap { arg -> String? in
            guard arg.hasPrefix("--") else { return nil }
            return String(arg.dropFirst(2).split(separator: "=", maxSplits: 1)[0])
        })
        var settings: [String: [String]] = [:]  // flag name -> values ([] for a toggle that is on)
        let configPath = commandLine.firstIndex(of: "--config").flatMap { commandLine.indices.contains($0 + 1) ? commandLine[$0 + 1] : nil }
            ?? commandLine.first { $0.hasPrefix("--config=") }.map { String($0.dropFirst("--config=".count)) }
            ?? environment["TALLY_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        if let configPath { settings = try fileSettings(path: configPath) }
        for flag in flags {
            let variable = "TALLY_" + flag.name.uppercased().replacingOccurrences(of: "-", with: "_")
            guard let value = environment[variable] else { continue }
            switch flag.kind {
            case .toggle:
                guard let on = boolean(value) else { throw CLIError("\(variable)=\(value): use 1/0, true/false or yes/no") }
                settings[flag.name] = on ? [] : nil
            case .values: settings[flag.name] = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            case .value: settings[flag.name] = [value]
            }
        }
        var front: [String] = []
        for flag in flags where !given.contains(flag.name) {
            guard let values = settings[flag.name] else { continue }
            if flag.kind == .toggle { front.append("--\(flag.name)") } else { for v in values { front += ["--\(flag.name)", v] } }
        }
        return front + commandLine
    }

    /// A value in the config file.
    enum Setting: Decodable {
        case bool(Bool), number(Double), string(String), list([Setting])

        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let b = try? c.decode(Bool.self) { self = .bool(b) }
            else if let n = try? c.decode(Double.self) { self = .number(n) }
            else if let s = try? c.decode(String.self) { self = .string(s) }
            else { self = .list(try c.decode([Setting].self)) }
        }

        var text: String? {
            switch self {
            case .string(let s): s
            case .number(let n): n == n.rounded() && abs(n) < 1e15 ? String(Int(n)) : String(n)
            default: nil
            }
        }
    }

    /// A JSON object of flag names (dashes or underscores) to a string, number, boolean or array.
    static func fileSettings(path: String) throws -> [String: [String]] {
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("cannot read the config file \(path)") }
        guard let object = try? JSONDecoder().decode([String: Setting].self, from: data) else {
            throw CLIError("the config file \(path) is not a JSON object of flag names to values")
        }
        var settings: [String: [String]] = [:]
        for (key, value) in object {
            let name = key.replacingOccurrences(of: "_", with: "-")
            guard let flag = flags.first(where: { $0.name == name }), name != "config" else {
                throw CLIError("the config file \(path) sets \(key), which is not a serve flag")
            }
            switch (flag.kind, value) {
            case (.toggle, .bool(let on)):
                if on { settings[name] = [] }
            case (.values, .list(let items)) where items.allSatisfy({ $0.text != nil }):
                settings[name] = items.compactMap(\.text)
            case (.values, _) where value.text != nil, (.value, _) where value.text != nil:
                settings[name] = [value.text!]
            default:
                throw CLIError("the config file \(path): \(key) must be \(flag.kind == .toggle ? "true or false" : flag.kind == .values ? "a string, a number or a list of them" : "a string or a number")")
            }
        }
        return settings
    }

    static func boolean(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "1", "true", "yes", "on": true
        case "0", "false", "no", "off", "": false
        default: nil
        }
    }
}

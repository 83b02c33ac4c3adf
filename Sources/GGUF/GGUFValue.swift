// GGUF metadata: the 13 value types, values (arrays may nest), and an ordered key/value table
// with typed getters that throw a named error on a missing key or a wrong type.

package enum GGUFValueType: UInt32, Sendable, CaseIterable {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6
    case bool = 7, string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    package var name: String {
        switch self {
        case .uint8: "UINT8"
        case .int8: "INT8"
        case .uint16: "UINT16"
        case .int16: "INT16"
        case .uint32: "UINT32"
        case .int32: "INT32"
        case .float32: "FLOAT32"
        case .bool: "BOOL"
        case .string: "STRING"
        case .array: "ARRAY"
        case .uint64: "UINT64"
        case .int64: "INT64"
        case .float64: "FLOAT64"
        }
    }

    /// Smallest encoded size of one value: bounds array counts before anything is allocated.
    var minimumEncodedSize: Int {
        switch self {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64, .string: 8  // a string is at least its u64 length
        case .array: 12  // element type u32 + count u64
        }
    }
}

package indirect enum GGUFValue: Equatable, Sendable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case float32(Float), bool(Bool), string(String), uint64(UInt64), int64(Int64), float64(Double)
    /// Elements all have `elementType`; kept even when empty so a round trip is exact.
    case array(elementType: GGUFValueType, [GGUFValue])

    package var type: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .float32: .float32
        case .bool: .bool
        case .string: .string
        case .uint64: .uint64
        case .int64: .int64
        case .float64: .float64
        case .array: .array
        }
    }

    /// "UINT32" or "[STRING]": how errors and `tally inspect` name a value's type.
    package var typeName: String {
        if case .array(let elementType, _) = self { return "[\(elementType.name)]" }
        return type.name
    }

    /// Any integer value as Int, whatever its width; nil for other types or if it does not fit.
    package var integer: Int? {
        switch self {
        case .uint8(let v): Int(v)
        case .int8(let v): Int(v)
        case .uint16(let v): Int(v)
        case .int16(let v): Int(v)
        case .uint32(let v): Int(v)
        case .int32(let v): Int(v)
        case .uint64(let v): Int(exactly: v)
        case .int64(let v): Int(v)
        default: nil
        }
    }
}

package struct GGUFMetadata: Equatable, Sendable {
    package private(set) var entries: [(key: String, value: GGUFValue)] = []
    private var index: [String: Int] = [:]

    package init() {}

    package var count: Int { entries.count }
    package var keys: [String] { entries.map(\.key) }
    package subscript(key: String) -> GGUFValue? { index[key].map { entries[$0].value } }
    package func contains(_ key: String) -> Bool { index[key] != nil }

    /// Replaces the value in place (keeping the key's position) or appends a new key.
    package mutating func set(_ key: String, _ value: GGUFValue) {
        if let i = index[key] {
            entries[i].value = value
        } else {
            index[key] = entries.count
            entries.append((key, value))
        }
    }

    package mutating func remove(_ key: String) {
        guard let i = index.removeValue(forKey: key) else { return }
        entries.remove(at: i)
        for j in i..<entries.count { index[entries[j].key] = j }
    }

    package static func == (a: GGUFMetadata, b: GGUFMetadata) -> Bool {
        a.entries.count == b.entries.count && zip(a.entries, b.entries).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    // MARK: Typed getters

    private func require(_ key: String) throws(GGUFError) -> GGUFValue {
        guard let value = self[key] else { throw .missingKey(key) }
        return value
    }

    package func string(_ key: String) throws(GGUFError) -> String {
        let value = try require(key)
        guard case .string(let s) = value else { throw .wrongValueType(key: key, expected: "STRING", found: value.typeName) }
        return s
    }

    package func bool(_ key: String) throws(GGUFError) -> Bool {
        let value = try require(key)
        guard case .bool(let b) = value else { throw .wrongValueType(key: key, expected: "BOOL", found: value.typeName) }
        return b
    }

    /// Any integer type, as Int.
    package func integer(_ key: String) throws(GGUFError) -> Int {
        let value = try require(key)
        guard let i = value.integer else { throw .wrongValueType(key: key, expected: "an integer", found: value.typeName) }
        return i
    }

    /// FLOAT32 or FLOAT64, as Float.
    package func float(_ key: String) throws(GGUFError) -> Float {
        let value = try require(key)
        switch value {
        case .float32(let f): return f
        case .float64(let d): return Float(d)
        default: throw .wrongValueType(key: key, expected: "FLOAT32", found: value.typeName)
        }
    }

    private func array(_ key: String, of type: GGUFValueType) throws(GGUFError) -> [GGUFValue] {
        let value = try require(key)
        guard case .array(let elementType, let items) = value, elementType == type else {
            throw .wrongValueType(key: key, expected: "[\(type.name)]", found: value.typeName)
        }
        return items
    }

    package func stringArray(_ key: String) throws(GGUFError) -> [String] {
        try array(key, of: .string).map { if case .string(let s) = $0 { s } else { "" } }
    }

    package func int32Array(_ key: String) throws(GGUFError) -> [Int32] {
        try array(key, of: .int32).map { if case .int32(let v) = $0 { v } else { 0 } }
    }

    package func float32Array(_ key: String) throws(GGUFError) -> [Float] {
        try array(key, of: .float32).map { if case .float32(let v) = $0 { v } else { 0 } }
    }

    /// The model's architecture name (`general.architecture`), the prefix of its hyper-parameter keys.
    package func architecture() throws(GGUFError) -> String { try string(GGUFKey.architecture) }

    /// Checks every key whose type tally knows (GGUFKey.expectedTypes) against its stored value.
    func validateKnownTypes() throws(GGUFError) {
        var expected = GGUFKey.expectedTypes
        if case .string(let arch)? = self[GGUFKey.architecture] {
            expected.merge(GGUFKey.expectedTypes(architecture: arch)) { a, _ in a }
        }
        for (key, value) in entries {
            guard let want = expected[key] else { continue }
            let ok: Bool
            switch (want, value) {
            case (.scalar(let t), _): ok = value.type == t
            case (.array(let t), .array(let elementType, _)): ok = elementType == t
            default: ok = false
            }
            if !ok { throw .wrongValueType(key: key, expected: want.name, found: value.typeName) }
        }
    }
}

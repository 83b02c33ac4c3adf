// `tally inspect`: a GGUF file's metadata and tensor table as text (like gguf-py's gguf-dump) or JSON.

import Foundation

extension GGUFFile {
    /// Text dump: one line per key (long arrays shortened) and one per tensor.
    package func dumpText(maxArrayItems: Int = 8) -> String {
        var lines: [String] = []
        lines.append("\(path): GGUF v\(version), \(metadata.count) keys, \(tensors.count) tensors, alignment \(alignment), data at offset \(dataOffset), \(fileSize) bytes")
        lines.append("")
        lines.append("metadata:")
        for (i, entry) in metadata.entries.enumerated() {
            let count: String
            if case .array(_, let items) = entry.value { count = String(items.count) } else { count = "1" }
            lines.append("\(pad(i + 1, 5)): \(pad(entry.value.typeName, -10)) \(pad(count, 7)) | \(entry.key) = \(Self.render(entry.value, maxArrayItems: maxArrayItems))")
        }
        lines.append("")
        lines.append("tensors:")
        lines.append("\(pad("#", 5))  \(pad("name", -32)) \(pad("type", -5)) \(pad("shape", -18)) \(pad("bytes", 12)) \(pad("offset", 12))")
        for (i, t) in tensors.enumerated() {
            let shape = t.dimensions.map(String.init).joined(separator: " x ")
            lines.append("\(pad(i + 1, 5))  \(pad(t.name, -32)) \(pad(t.type.name, -5)) \(pad(shape, -18)) \(pad(t.byteCount, 12)) \(pad(t.offset, 12))")
        }
        let parameters = tensors.reduce(0) { $0 + $1.elementCount }
        let bytes = tensors.reduce(0) { $0 + $1.byteCount }
        lines.append("")
        lines.append("\(parameters) parameters, \(bytes) bytes of tensor data (\(String(format: "%.2f", Double(bytes) * 8 / Double(max(parameters, 1)))) bits per weight)")
        return lines.joined(separator: "\n")
    }

    static func render(_ value: GGUFValue, maxArrayItems: Int) -> String {
        switch value {
        case .string(let s):
            let escaped = s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
            return "'" + (escaped.count > 120 ? String(escaped.prefix(120)) + "..." : escaped) + "'"
        case .array(_, let items):
            let shown = items.prefix(maxArrayItems).map { render($0, maxArrayItems: maxArrayItems) }
            return "[" + shown.joined(separator: ", ") + (items.count > maxArrayItems ? ", ... (\(items.count) items)" : "") + "]"
        case .float32(let f): return "\(f)"
        case .float64(let d): return "\(d)"
        case .bool(let b): return "\(b)"
        default: return value.integer.map(String.init) ?? "?"
        }
    }

    /// JSON dump for machines. Arrays longer than `maxArrayItems` are given as their type and count
    /// unless `fullArrays`.
    package func dumpJSON(fullArrays: Bool = false, maxArrayItems: Int = 8) throws -> String {
        func json(_ value: GGUFValue) -> Any {
            switch value {
            case .uint8(let v): return v
            case .int8(let v): return v
            case .uint16(let v): return v
            case .int16(let v): return v
            case .uint32(let v): return v
            case .int32(let v): return v
            case .float32(let v): return v.isFinite ? Double(v) : "\(v)"
            case .bool(let v): return v
            case .string(let v): return v
            case .uint64(let v): return v
            case .int64(let v): return v
            case .float64(let v): return v.isFinite ? v : "\(v)"
            case .array(let elementType, let items):
                if !fullArrays && items.count > maxArrayItems {
                    return ["type": "array", "element_type": elementType.name, "count": items.count] as [String: Any]
                }
                return items.map(json)
            }
        }
        var keys: [[String: Any]] = []
        for (key, value) in metadata.entries { keys.append(["key": key, "type": value.typeName, "value": json(value)]) }
        let tensorList: [[String: Any]] = tensors.map {
            ["name": $0.name, "type": $0.type.name, "shape": $0.dimensions, "bytes": $0.byteCount, "offset": $0.offset]
        }
        let object: [String: Any] = [
            "path": path, "version": version, "alignment": alignment, "data_offset": dataOffset,
            "file_size": fileSize, "metadata": keys, "tensors": tensorList,
        ]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}

/// Pads to `width` columns: right-aligned for a positive width, left-aligned for a negative one.
func pad(_ value: Any, _ width: Int) -> String {
    let s = "\(value)"
    let fill = String(repeating: " ", count: max(0, abs(width) - s.count))
    return width < 0 ? s + fill : fill + s
}

/// JSON written exactly as Python's `json.dump(value, f, indent=4, sort_keys=True)` writes it: four-space
/// indentation, `", "`-free item separators at line ends, `": "` after keys, keys in code point order,
/// non-ASCII escaped as `\uXXXX` (lowercase hex, surrogate pairs above U+FFFF), no trailing newline.
/// ims-python-helper writes manifest.json this way, so manifests written by ims are byte-identical.
enum PythonJSON: Equatable {
    case string(String)
    case int(Int)
    case bool(Bool)
    case null
    case array([PythonJSON])
    case object([String: PythonJSON])

    func serialized() -> String {
        var out = ""
        write(to: &out, level: 0)
        return out
    }

    private func write(to out: inout String, level: Int) {
        switch self {
        case .string(let text): Self.writeString(text, to: &out)
        case .int(let value): out += String(value)
        case .bool(let value): out += value ? "true" : "false"
        case .null: out += "null"
        case .array(let items):
            guard !items.isEmpty else {
                out += "[]"
                return
            }
            out += "["
            for (index, item) in items.enumerated() {
                out += index == 0 ? "\n" : ",\n"
                out += String(repeating: " ", count: 4 * (level + 1))
                item.write(to: &out, level: level + 1)
            }
            out += "\n" + String(repeating: " ", count: 4 * level) + "]"
        case .object(let members):
            guard !members.isEmpty else {
                out += "{}"
                return
            }
            out += "{"
            let keys = members.keys.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
            for (index, key) in keys.enumerated() {
                out += index == 0 ? "\n" : ",\n"
                out += String(repeating: " ", count: 4 * (level + 1))
                Self.writeString(key, to: &out)
                out += ": "
                members[key]?.write(to: &out, level: level + 1)
            }
            out += "\n" + String(repeating: " ", count: 4 * level) + "}"
        }
    }

    /// Python's `encode_basestring_ascii`.
    private static func writeString(_ text: String, to out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value >= 0x20 && scalar.value <= 0x7E {
                    out.unicodeScalars.append(scalar)
                } else if scalar.value <= 0xFFFF {
                    out += hex4(scalar.value)
                } else {
                    let value = scalar.value - 0x10000
                    out += hex4(0xD800 | (value >> 10))
                    out += hex4(0xDC00 | (value & 0x3FF))
                }
            }
        }
        out += "\""
    }

    private static func hex4(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return "\\u" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}

// The three character classes the pre-tokenizer regexes test: \p{L}, \p{N} and \s (Unicode White_Space),
// looked up per scalar from a table built once for the BMP; rarer planes are classified on the fly.

/// Class bits of one scalar. `present` marks a scalar inside the current chunk, so "out of range" is 0,
/// the way llama.cpp's `_get_flags` returns empty flags past a chunk's end.
enum CharacterClass {
    static let present: UInt8 = 1
    static let letter: UInt8 = 2
    static let number: UInt8 = 4
    static let whitespace: UInt8 = 8
}

enum UnicodeClasses {
    /// Classes of U+0000...U+FFFF (surrogates get `present` only).
    static let basicPlane: [UInt8] = (0..<0x10000).map { classify(UInt32($0)) }

    static func classify(_ value: UInt32) -> UInt8 {
        guard let scalar = Unicode.Scalar(value) else { return CharacterClass.present }
        let properties = scalar.properties
        var bits = CharacterClass.present
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            bits |= CharacterClass.letter
        case .decimalNumber, .letterNumber, .otherNumber:
            bits |= CharacterClass.number
        default:
            break
        }
        if properties.isWhitespace { bits |= CharacterClass.whitespace }
        return bits
    }
}

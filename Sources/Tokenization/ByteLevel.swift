// GPT-2's byte-level alphabet: every byte is shown as one printable scalar, so a byte-level BPE
// vocabulary stores " world" as "Ġworld". Used to build token byte strings and to decode pieces.

enum ByteLevel {
    /// Scalar value standing for each byte: printable Latin-1 bytes stand for themselves, the other 68
    /// bytes (controls, space, DEL, NBSP, soft hyphen, ...) take U+0100... in byte order.
    static let scalarForByte: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            if isPrintable(UInt8(byte)) {
                table[byte] = UInt32(byte)
            } else {
                table[byte] = next
                next += 1
            }
        }
        return table
    }()

    /// Inverse of `scalarForByte` for scalars below U+0144; -1 where a scalar stands for no byte.
    static let byteForScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 256 + 68)
        for (byte, scalar) in scalarForByte.enumerated() { table[Int(scalar)] = Int16(byte) }
        return table
    }()

    static func isPrintable(_ byte: UInt8) -> Bool {
        (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
    }

    /// UTF-8 of the byte-level form of `bytes` (what the vocabulary stores).
    static func encode(_ bytes: some Sequence<UInt8>, into out: inout [UInt8]) {
        for byte in bytes {
            let scalar = scalarForByte[Int(byte)]
            if scalar < 0x80 {
                out.append(UInt8(scalar))
            } else {
                out.append(UInt8(0xC0 | (scalar >> 6)))
                out.append(UInt8(0x80 | (scalar & 0x3F)))
            }
        }
    }

    /// The bytes a byte-level token text stands for. A scalar outside the alphabet (possible only in a
    /// malformed vocabulary) is kept as its own UTF-8 rather than dropped.
    static func decode(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            let value = Int(scalar.value)
            if value < byteForScalar.count, byteForScalar[value] >= 0 {
                out.append(UInt8(byteForScalar[value]))
            } else {
                out.append(contentsOf: String(scalar).utf8)
            }
        }
        return out
    }
}

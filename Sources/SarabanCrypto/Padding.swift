/// Length hiding for envelope plaintexts.
///
/// A plaintext of `n` bytes is stored as a 4-byte big-endian length, the plaintext, then zeros up to
/// the PADME bucket of `n + 4` (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and
/// Communication with PURBs", PETS 2019). PADME keeps the overhead at most about 12% (less for large
/// sizes) while leaking only O(log log n) bits of the length: the bucket sizes have a mantissa of
/// at most ⌊log₂ e⌋ + 1 significant bits, where e = ⌊log₂ n⌋.
enum Padding {
    /// PADME: the padded length for `length` (≥ 1) bytes.
    static func padme(_ length: Int) -> Int {
        guard length > 1 else { return max(length, 0) }
        let e = Int.bitWidth - 1 - length.leadingZeroBitCount  // ⌊log₂ L⌋
        let s = Int.bitWidth - e.leadingZeroBitCount  // ⌊log₂ e⌋ + 1
        let lastBits = e - s
        let mask = (1 << lastBits) - 1
        return (length + mask) & ~mask
    }

    /// Length of the padded block that carries `plaintextLength` bytes.
    static func paddedLength(forPlaintext plaintextLength: Int) -> Int { padme(plaintextLength + 4) }

    /// Whether `length` is a size `paddedLength(forPlaintext:)` can produce.
    static func isBucket(_ length: Int) -> Bool { length >= 4 && padme(length) == length }
}

/// The document a register (ทะเบียนหนังสือ) is kept in: one of kind `register` per office, book and
/// year, holding `book` (``RegisterBook`` raw value), `year`, `owner` (the owning replica, hex),
/// `office`, `code` and the append list `events` of ``RegisterEvent``s (folded by
/// ``RegisterState``). The node and the simulator both read and write these names.
public enum RegisterDocument {
    public static let kind = "register"
    public static let book = "book"
    public static let year = "year"
    public static let owner = "owner"
    public static let office = "office"
    public static let code = "code"
    public static let events = "events"
}

// INTERIM — text engineer: delete this whole file in the same commit that lands Sources/SarabanCore/Text/.
// It only lets the document layer compile until the real TextCRDT exists; nothing here is used for real.
public struct TextInsert: Hashable, Sendable { public var id: OpID; public var originLeft: OpID?; public var originRight: OpID?; public var content: String
  public init(id: OpID, originLeft: OpID?, originRight: OpID?, content: String) { self.id = id; self.originLeft = originLeft; self.originRight = originRight; self.content = content } }
public struct IDSpan: Hashable, Sendable { public var start: OpID; public var length: Int; public init(start: OpID, length: Int) { self.start = start; self.length = length } }
public struct TextDelete: Hashable, Sendable { public var spans: [IDSpan]; public init(spans: [IDSpan]) { self.spans = spans } }
public struct TextCRDT: Sendable {
  public init() {}
  public var count: Int { 0 }
  public var string: String { "" }
  public mutating func insert(at pos: Int, _ text: String, id: OpID) -> TextInsert { fatalError() }
  public mutating func delete(at pos: Int, count: Int) -> TextDelete { fatalError() }
  public mutating func apply(_ op: TextInsert) {}
  public mutating func apply(_ op: TextDelete) {}
  public func encode(into w: inout BinaryWriter) {}
  public static func decode(from r: inout BinaryReader) throws(DecodingError) -> TextCRDT { TextCRDT() }
}

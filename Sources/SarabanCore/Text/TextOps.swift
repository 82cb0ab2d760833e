// The operations a text replica sends and receives, and their binary encodings.

/// A remote-applicable insert: `content` (n Unicode scalars) gets ids id.counter ..< id.counter+n of id.replica.
///
/// The first scalar goes between `originLeft` and `originRight` (nil: document start / end), which
/// were adjacent at the author when it was typed; scalar i > 0 has origin-left id.counter+i-1.
public struct TextInsert: Hashable, Sendable {
    public var id: OpID
    public var originLeft: OpID?
    public var originRight: OpID?
    public var content: String

    public init(id: OpID, originLeft: OpID?, originRight: OpID?, content: String) {
        self.id = id
        self.originLeft = originLeft
        self.originRight = originRight
        self.content = content
    }

    /// The number of ids the insert uses (Unicode scalars in `content`).
    public var length: Int { content.unicodeScalars.count }
}

/// A span of consecutive ids of one replica: start.counter ..< start.counter+length.
public struct IDSpan: Hashable, Sendable {
    public var start: OpID
    public var length: Int

    public init(start: OpID, length: Int) {
        self.start = start
        self.length = length
    }

    public func contains(_ id: OpID) -> Bool {
        id.replica == start.replica && id.counter >= start.counter && id.counter - start.counter < UInt64(length)
    }
}

/// Deletes the characters with the listed ids (tombstones stay, so later inserts can still refer to them).
public struct TextDelete: Hashable, Sendable {
    public var spans: [IDSpan]

    public init(spans: [IDSpan]) { self.spans = spans }

    /// The number of ids named.
    public var length: Int { spans.reduce(0) { $0 + $1.length } }
}

public enum TextError: Error, Equatable, Sendable {
    /// A local edit named a position beyond the text.
    case positionOutOfRange(position: Int, length: Int)
    /// A remote op refers to an id this replica does not have yet (deliver it later).
    case missingDependency(OpID)
    /// A local insert reuses ids this replica already has.
    case idInUse(OpID)
    /// The op is malformed (overflowing id range, partly applied ids).
    case invalidOperation(String)
}

// MARK: - Encoding

extension TextInsert {
    // flags: bit0 originLeft present, bit1 its replica = id.replica, bit2 originRight present, bit3 same.
    public func encode(into w: inout BinaryWriter) {
        var flags: UInt8 = 0
        if let l = originLeft { flags |= 1; if l.replica == id.replica { flags |= 2 } }
        if let r = originRight { flags |= 4; if r.replica == id.replica { flags |= 8 } }
        w.replica(id.replica)
        w.varint(id.counter)
        w.byte(flags)
        if let l = originLeft {
            if flags & 2 == 0 { w.replica(l.replica) }
            w.varint(l.counter)
        }
        if let r = originRight {
            if flags & 8 == 0 { w.replica(r.replica) }
            w.varint(r.counter)
        }
        w.string(content)
    }

    public static func decode(from r: inout BinaryReader) throws(DecodingError) -> TextInsert {
        let replica = try r.replica()
        let counter = try r.varint()
        let at = r.offset
        let flags = try r.byte()
        guard flags & 0xF0 == 0, flags & 1 != 0 || flags & 2 == 0, flags & 4 != 0 || flags & 8 == 0 else {
            throw DecodingError(.invalidValue, at: at, "text insert flags \(flags)")
        }
        var left: OpID? = nil
        var right: OpID? = nil
        if flags & 1 != 0 {
            let rep = flags & 2 != 0 ? replica : try r.replica()
            left = OpID(counter: try r.varint(), replica: rep)
        }
        if flags & 4 != 0 {
            let rep = flags & 8 != 0 ? replica : try r.replica()
            right = OpID(counter: try r.varint(), replica: rep)
        }
        let cat = r.offset
        let content = try r.string()
        let n = content.unicodeScalars.count
        guard n > 0 else { throw DecodingError(.invalidValue, at: cat, "empty text insert") }
        guard counter <= UInt64.max - UInt64(n) else {
            throw DecodingError(.invalidValue, at: cat, "id range overflows")
        }
        return TextInsert(id: OpID(counter: counter, replica: replica), originLeft: left, originRight: right,
                          content: content)
    }
}

extension TextDelete {
    // count, then per span: 0 = new replica follows / 1 = same replica as the previous span, counter, length.
    public func encode(into w: inout BinaryWriter) {
        w.varint(spans.count)
        var prev: ReplicaID? = nil
        for s in spans {
            if s.start.replica == prev {
                w.byte(1)
            } else {
                w.byte(0)
                w.replica(s.start.replica)
                prev = s.start.replica
            }
            w.varint(s.start.counter)
            w.varint(s.length)
        }
    }

    public static func decode(from r: inout BinaryReader) throws(DecodingError) -> TextDelete {
        let n = try r.count(max: r.remaining / 3)
        var spans: [IDSpan] = []
        spans.reserveCapacity(n)
        var prev: ReplicaID? = nil
        for _ in 0..<n {
            let at = r.offset
            let tag = try r.byte()
            let rep: ReplicaID
            switch tag {
            case 0: rep = try r.replica()
            case 1:
                guard let p = prev else { throw DecodingError(.invalidReference, at: at, "no previous replica") }
                rep = p
            default: throw DecodingError(.unknownTag, at: at, "span tag \(tag)")
            }
            prev = rep
            let counter = try r.varint()
            let lat = r.offset
            let len = try r.count(max: Int(Int32.max))
            guard len > 0, counter <= UInt64.max - UInt64(len) else {
                throw DecodingError(.invalidValue, at: lat, "bad span length \(len)")
            }
            spans.append(IDSpan(start: OpID(counter: counter, replica: rep), length: len))
        }
        return TextDelete(spans: spans)
    }
}

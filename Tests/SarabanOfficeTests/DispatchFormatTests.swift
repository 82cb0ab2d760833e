import SarabanCore
import Testing
@testable import SarabanOffice

/// The pure formats of correspondence between offices: content-only signing bytes, the registry
/// stamp, the dispatch payload (the letter as sent) and the receipt body.
@Suite struct DispatchFormatTests {
    let fields: [String: String] = [
        "ที่": "นว 0017/12", "วันที่": "6 ธันวาคม 2569", "สถานะ": "ส่งแล้ว", "เรื่อง": "ขอเชิญประชุม",
        "เรียน": "นายอำเภอบรรพตพิสัย", "ข้อความ": "ด้วยจังหวัด\tขอเชิญ\nท่าน", "คำลงท้าย": "ขอแสดงความนับถือ",
        "ผู้ลงนาม": "นายสมมติ ใจดี", "ตำแหน่ง": "ผู้ว่าราชการจังหวัด", "ชั้นความเร็ว": "ด่วน",
    ]

    func stamp(number: Int = 12) -> RegistryStamp {
        RegistryStamp(
            book: .send, number: number, year: 2569, letterNumber: "นว 0017/\(number)", date: "6 ธันวาคม 2569",
            office: "สำนักงานจังหวัดนครสวรรค์", code: "นว 0017", node: "sb" + String(repeating: "a", count: 56),
            letter: "12-ab", contentHash: Array(repeating: 7, count: 32), time: 1_796_000_000_000,
            signature: Array(repeating: 9, count: 64))
    }

    @Test func contentBytesLeaveOutTheRegistersFieldsAndStatusButCoverEverythingElse() {
        let base = canonicalLetterContent(kind: .external, fields: fields, attachmentHashes: ["bb", "aa"])
        var numbered = fields
        numbered["ที่"] = "นว 0017/99"
        numbered["วันที่"] = "7 ธันวาคม 2569"
        numbered["สถานะ"] = "ลงทะเบียนแล้ว"
        numbered.removeValue(forKey: "ที่")
        #expect(canonicalLetterContent(kind: .external, fields: numbered, attachmentHashes: ["aa", "bb"]) == base)
        let text = String(decoding: base, as: UTF8.self)
        #expect(text.hasPrefix("SARABAN-LETTER-V2\nkind\tภายนอก\n"))
        #expect(!text.contains("นว 0017/12") && !text.contains("6 ธันวาคม 2569"))
        #expect(text.contains("ข้อความ\tด้วยจังหวัด\\tขอเชิญ\\nท่าน\n"))
        #expect(text.hasSuffix("attachment\taa\nattachment\tbb\n"))
        for f in LetterField.content {
            var changed = fields
            changed[f.rawValue] = (fields[f.rawValue] ?? "") + "x"
            #expect(
                canonicalLetterContent(kind: .external, fields: changed, attachmentHashes: ["aa", "bb"]) != base,
                "\(f.rawValue) is not covered")
        }
        #expect(canonicalLetterContent(kind: .internal, fields: fields, attachmentHashes: ["aa", "bb"]) != base)
        #expect(canonicalLetterContent(kind: .external, fields: fields, attachmentHashes: ["aa"]) != base)
    }

    @Test func aSignatureRecordReportsTheFieldsItsVersionCovers() {
        var rec = SignatureRecord(
            version: 2, officer: "ก", position: "ข", officerKey: "", nodeKey: "", certificate: "", signature: "",
            kind: "ภายนอก", fields: fields.filter { $0.key != "ที่" && $0.key != "วันที่" && $0.key != "สถานะ" },
            attachments: [], time: 0)
        // Numbered and dated after signing: nothing a version-2 signature covers changed.
        #expect(rec.changedFields(current: fields).isEmpty)
        var edited = fields
        edited["เรียน"] = "ผู้ว่าราชการจังหวัด"
        #expect(rec.changedFields(current: edited) == ["เรียน"])
        #expect(rec.signedBytes == canonicalLetterContent(kind: .external, fields: rec.fields, attachmentHashes: []))
        // A version-1 signature covered ที่ and วันที่: numbering after it changed them.
        rec.version = 1
        #expect(rec.changedFields(current: fields) == ["ที่", "วันที่"])
        rec.version = 9
        #expect(rec.signedBytes == nil)
    }

    @Test func theRegistryStampRoundTripsAndSignsEveryField() throws {
        let s = stamp()
        #expect(try RegistryStamp(decoding: s.encoded()) == s)
        #expect(s.signedBytes.starts(with: Array("SARABAN-REGISTRY-STAMP-V1\n".utf8)))
        var other = s
        other.number = 13
        #expect(other.signedBytes != s.signedBytes)
        other = s
        other.date = "7 ธันวาคม 2569"
        #expect(other.signedBytes != s.signedBytes)
        other = s
        other.contentHash[0] ^= 1
        #expect(other.signedBytes != s.signedBytes)
        other = s
        other.signature[0] ^= 1
        #expect(other.signedBytes == s.signedBytes)  // the signature is not part of what it signs
        var bad = s.encoded()
        bad[0] = 2
        #expect(throws: DecodingError.self) { try RegistryStamp(decoding: bad) }
        #expect(throws: DecodingError.self) { try RegistryStamp(decoding: Array(s.encoded().dropLast())) }
        #expect(throws: DecodingError.self) { try RegistryStamp(decoding: s.encoded() + [0]) }
    }

    func sentLetter() -> SentLetter {
        let sig = SignatureRecord(
            version: 2, officer: "นายสมมติ ใจดี", position: "ผู้ว่าราชการจังหวัด", officerKey: "ab", nodeKey: "cd",
            certificate: "ef", signature: "01", kind: "ภายนอก", fields: ["เรื่อง": "ขอเชิญประชุม"], attachments: ["aa"],
            time: 1_796_000_000_000)
        var f = fields
        f["สถานะ"] = nil
        return SentLetter(
            kind: .external, fields: f,
            attachments: [SentAttachment(hash: "aa", name: "สแกน.pdf", size: 300_000, chunks: 2, root: "cc")],
            signatures: [sig], sender: OfficeAddress(office: "จังหวัดนครสวรรค์", code: "นว 0017", nodes: ["sbA"]),
            recipients: [
                OfficeAddress(office: "อำเภอบรรพตพิสัย", nodes: ["sbB1", "sbB2"]), OfficeAddress(office: "อำเภอเมือง", nodes: ["sbC"]),
            ], circular: true, stamp: stamp())
    }

    @Test func theLetterAsSentRoundTripsByteForByte() throws {
        let l = sentLetter()
        let bytes = l.encoded()
        #expect(bytes.first == SentLetter.version)
        let back = try SentLetter(decoding: bytes)
        #expect(back == l)
        #expect(back.encoded() == bytes)
        // สถานะ is never carried: the receiving office keeps its own.
        var withStatus = l
        withStatus.fields["สถานะ"] = "ส่งแล้ว"
        #expect(withStatus.encoded() == bytes)
    }

    @Test func aMalformedPayloadIsATypedErrorNeverATrap() throws {
        let bytes = sentLetter().encoded()
        #expect(throws: DecodingError.self) { try SentLetter(decoding: []) }
        #expect(throws: DecodingError.self) { try SentLetter(decoding: [2] + bytes.dropFirst()) }
        #expect(throws: DecodingError.self) { try SentLetter(decoding: bytes + [0]) }
        // Every truncation is refused.
        for n in stride(from: 0, to: bytes.count, by: 7) {
            #expect(throws: DecodingError.self) { try SentLetter(decoding: Array(bytes.prefix(n))) }
        }
        // Invalid UTF-8 in a field value.
        var w = BinaryWriter()
        w.byte(1)
        w.string("ภายนอก")
        w.varint(1)
        w.string("เรื่อง")
        w.lengthPrefixed([0xE0, 0x80])
        #expect(throws: DecodingError.self) { try SentLetter(decoding: w.bytes) }
        // A field that is not a letter field, or สถานะ.
        for name in ["สถานะ", "owner"] {
            var x = BinaryWriter()
            x.byte(1)
            x.string("ภายนอก")
            x.varint(1)
            x.string(name)
            x.string("v")
            #expect(throws: DecodingError.self) { try SentLetter(decoding: x.bytes) }
        }
    }

    @Test func aReceiptRoundTripsAndSignsItsAnswer() throws {
        let r = ReceiptBody(
            status: .received, dispatch: "40-abc", office: "อบต.หนองบัว", code: "นว 0318", node: "sbB", number: 12,
            year: 2569, date: "2026-12-06", time: "10:42", reason: "", at: 1_796_000_000_000, signature: Array(repeating: 3, count: 64))
        #expect(try ReceiptBody(decoding: r.encoded()) == r)
        var returned = r
        returned.status = .returned
        returned.number = 0
        returned.reason = "ส่งผิดหน่วยงาน"
        #expect(try ReceiptBody(decoding: returned.encoded()) == returned)
        #expect(returned.signedBytes != r.signedBytes)
        var bad = r.encoded()
        bad[1] = 7
        #expect(throws: DecodingError.self) { try ReceiptBody(decoding: bad) }
        #expect(throws: DecodingError.self) { try ReceiptBody(decoding: Array(r.encoded().dropLast(3))) }
    }
}

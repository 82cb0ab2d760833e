import ArgumentParser
import Foundation
import SarabanCore
import SarabanNode
import SarabanOffice

// MARK: - office

struct OfficeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "office", abstract: "The offices this node can send letters to (สมุดรายชื่อสำนักงาน).",
        subcommands: [List.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the offices known to this node: name, letter code, node ids, exchange spaces shared.",
            discussion: """
                Offices come from the rosters of the spaces this node shares with other offices (their names as the
                space's admin recorded them: `space invite … --office NAME`) and from the letters they sent. Any of the
                name, the letter code or a node id (or a prefix of at least six characters) names the office in
                `letter send --to`. An office with several nodes (branch servers) lists them all.
                """)

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption

        struct Entry: Encodable {
            struct Space: Encodable {
                var id: String
                var name: String
                var nodes: [String]
            }

            var office: String
            @OrNull var code: String?
            var nodes: [String]
            var spaces: [Space]
        }

        func run() async throws {
            try options.withNode { node in
                let all = try node.correspondence.offices()
                if output.json {
                    try Output.json(
                        all.map { e in
                            Entry(
                                office: e.office, code: e.code.isEmpty ? nil : e.code, nodes: e.nodes.map(\.text),
                                spaces: e.spaces.map { .init(id: $0.id.hex, name: $0.name, nodes: $0.nodes.map(\.text)) })
                        })
                    return
                }
                if all.isEmpty {
                    Output.note(
                        "ยังไม่รู้จักสำนักงานอื่น / no other office is known yet: join or create a space shared with other offices "
                            + "(`saraban space create`, `space invite NODE_ID --office NAME`, `space join`)")
                    return
                }
                for e in all {
                    let name = e.office.isEmpty ? "(ไม่ทราบชื่อ / unnamed)" : e.office
                    Output.line("\(name)\(e.code.isEmpty ? "" : "  (\(e.code))")")
                    for n in e.nodes { Output.line("  node   \(n.text)") }
                    for s in e.spaces { Output.line("  space  \(s.name)") }
                    if e.spaces.isEmpty { Output.line("  (ไม่มีพื้นที่ร่วม / no shared space now)") }
                }
            }
        }
    }
}

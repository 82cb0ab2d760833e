/// The templates and strings of the reading half of the correspondence pages (inbox, registers,
/// letters, sync status, audit): kept apart from ``Templates`` so each half of issue 15 has its own.
/// `{{x}}` is HTML-escaped; nothing here is rendered unescaped.
enum ReadTemplates {
    static let all: [(String, String)] = [
        ("inbox", inbox), ("registers", registers), ("register_print", registerPrint), ("letters", letters),
        ("letter", letter), ("letter_sheet", letterSheet), ("letter_print", letterPrint), ("sync", sync), ("audit", audit),
    ]

    static let inbox = #"""
        <section class="card" data-live="inbox" id="inbox">
          <h1>{{t.inbox}} <small class="count">({{count}})</small></h1>
          {{#notice}}<p class="notice" role="status">{{notice}}</p>{{/notice}}
          {{^items}}<p>{{t.inbox_empty}}</p>{{/items}}
          {{#has_items}}
          <table class="grid inbox">
            <caption class="visually-hidden">{{t.inbox}}</caption>
            <thead><tr><th scope="col">{{t.urgency}}</th><th scope="col">{{t.from}}</th><th scope="col">{{t.number}}</th><th scope="col">{{t.subject}}</th><th scope="col">{{t.sent_at}}</th><th scope="col">{{t.actions}}</th></tr></thead>
            <tbody>
            {{#items}}<tr class="urgency-{{urgency_en}}" data-dispatch="{{id}}">
              <td><span class="badge urgency-{{urgency_en}}">{{urgency}}</span>{{#secrecy}} <span class="badge secret">{{secrecy}}</span>{{/secrecy}}</td>
              <td>{{from}}</td><td>{{number}}<br><small>{{date}}</small></td>
              <td>{{subject}}{{#attachments}}<br><small>{{t.attachments}}: {{attachments}}</small>{{/attachments}}</td>
              <td>{{sent}}</td>
              <td class="actions">
                <form method="post" action="/inbox/{{id}}/receive" class="inline"><input type="hidden" name="_csrf" value="{{csrf}}"><button type="submit" class="receive">{{t.receive}}</button></form>
                <details class="return"><summary>{{t.return}}</summary>
                  <form method="post" action="/inbox/{{id}}/return" class="stack">
                    <input type="hidden" name="_csrf" value="{{csrf}}">
                    <label for="reason-{{id}}">{{t.return_reason}}</label>
                    <input id="reason-{{id}}" name="reason" required maxlength="500">
                    <button type="submit">{{t.return}}</button>
                  </form>
                </details>
              </td></tr>{{/items}}
            </tbody>
          </table>
          {{/has_items}}
        </section>
        """#

    static let registers = #"""
        <section class="card">
          <h1>{{book_thai}} {{t.year}} {{year}}</h1>
          <nav class="tabs" aria-label="{{t.registers}}">
            {{#books}}<a href="/registers/{{key}}?year={{year}}"{{#current}} aria-current="page"{{/current}}>{{name}}</a>{{/books}}
          </nav>
          <form method="get" action="/registers/{{book}}" class="filters">
            <label for="year">{{t.year}}</label>
            <select id="year" name="year">{{#years}}<option value="{{y}}"{{#selected}} selected{{/selected}}>{{y}}</option>{{/years}}</select>
            <label for="q">{{t.search}}</label>
            <input id="q" name="q" value="{{q}}" data-filter="register-rows" type="search">
            <label for="state">{{t.state}}</label>
            <select id="state" name="state">{{#states}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/states}}</select>
            <button type="submit">{{t.show}}</button>
          </form>
          <p class="links"><a href="/registers/{{book}}/print?year={{year}}{{#q}}&amp;q={{q}}{{/q}}">{{t.print_view}}</a> · <a href="/registers/{{book}}/csv?year={{year}}" download>{{t.csv}}</a> · {{shown}} / {{total}}</p>
          <div class="scroll">
          <table class="grid register" id="register-rows">
            <caption class="visually-hidden">{{book_thai}} {{year}}</caption>
            <thead><tr>{{#columns}}<th scope="col">{{.}}</th>{{/columns}}</tr></thead>
            <tbody>
            {{#rows}}<tr class="state-{{state}}">{{#cells}}<td>{{#link}}<a href="{{link}}">{{text}}</a>{{/link}}{{^link}}{{text}}{{/link}}</td>{{/cells}}</tr>{{/rows}}
            </tbody>
          </table>
          </div>
          {{^rows}}<p>{{t.no_entries}}</p>{{/rows}}
          {{#paged}}<p class="pager">{{#prev}}<a href="/registers/{{book}}?{{filters}}&amp;page={{prev}}">←</a>{{/prev}} {{t.page}} {{page}} / {{pages}} {{#next}}<a href="/registers/{{book}}?{{filters}}&amp;page={{next}}">→</a>{{/next}}</p>{{/paged}}
        </section>
        """#

    static let registerPrint = #"""
        <!doctype html>
        <html lang="{{lang}}">
        <head><meta charset="utf-8"><title>{{book_thai}} {{year}}</title>
        <link rel="stylesheet" href="/static/saraban.css"><link rel="stylesheet" href="/static/read.css"></head>
        <body class="print-register">
        <h1>{{book_thai}} {{t.year}} {{year}}</h1>
        <p class="office">{{office}}</p>
        <table class="register-print">
          <thead><tr>{{#columns}}<th scope="col">{{.}}</th>{{/columns}}</tr></thead>
          <tbody>{{#rows}}<tr>{{#cells}}<td>{{.}}</td>{{/cells}}</tr>{{/rows}}</tbody>
        </table>
        </body>
        </html>
        """#

    static let letters = #"""
        <section class="card">
          <h1>{{t.letters}} {{t.year}} {{year}}</h1>
          <form method="get" action="/letters" class="filters">
            <label for="year">{{t.year}}</label><input id="year" name="year" value="{{year}}" inputmode="numeric" size="5">
            <button type="submit">{{t.show}}</button>
          </form>
          <table class="grid">
            <thead><tr><th scope="col">{{t.number}}</th><th scope="col">{{t.subject}}</th><th scope="col">{{t.status}}</th><th scope="col">{{t.from}}</th></tr></thead>
            <tbody>{{#items}}<tr><td>{{number}}</td><td><a href="/letters/{{id}}">{{subject}}</a>{{#secrecy}} <span class="badge secret">{{secrecy}}</span>{{/secrecy}}</td><td>{{status}}</td><td>{{from}}</td></tr>{{/items}}</tbody>
          </table>
          <p class="pager">{{#prev}}<a href="/letters?year={{year}}&amp;page={{prev}}">←</a>{{/prev}} {{t.page}} {{page}} / {{pages}} {{#next}}<a href="/letters?year={{year}}&amp;page={{next}}">→</a>{{/next}}</p>
        </section>
        """#

    /// The letter as the Regulation lays it out (a partial of the letter page and the print view).
    static let letterSheet = #"""
        <article class="sheet kind-{{kind_en}}" lang="th" aria-label="{{kind_thai}}">
          {{#secrecy}}<p class="secrecy top">{{secrecy}}</p>{{/secrecy}}
          {{#urgency}}<p class="urgency-stamp">{{urgency}}</p>{{/urgency}}
          {{#memo}}
          <h2 class="memo-title">บันทึกข้อความ</h2>
          <p class="memo-line"><b>ส่วนราชการ</b> {{agency}}</p>
          <p class="memo-line split"><span><b>ที่</b> {{number}}</span><span><b>วันที่</b> {{date}}</span></p>
          <p class="memo-line"><b>เรื่อง</b> {{subject}}</p>
          {{/memo}}
          {{^memo}}
          <div class="head">
            <p class="number">ที่ {{number}}</p>
            <p class="emblem" aria-hidden="true"></p>
            <p class="agency">{{agency}}</p>
          </div>
          <p class="date">{{date}}</p>
          <p class="subject"><span class="label">เรื่อง</span> {{subject}}</p>
          {{/memo}}
          {{#salutation}}<p class="salutation"><span class="label">เรียน</span> {{salutation}}</p>{{/salutation}}
          {{#reference}}<p class="reference"><span class="label">อ้างถึง</span> {{reference}}</p>{{/reference}}
          {{#enclosures}}<p class="enclosures"><span class="label">สิ่งที่ส่งมาด้วย</span> {{enclosures}}</p>{{/enclosures}}
          <div class="body">{{#paragraphs}}<p>{{.}}</p>{{/paragraphs}}</div>
          {{#closing}}<p class="closing">{{closing}}</p>{{/closing}}
          <div class="signature">
            {{#signed}}<p class="signed-mark">({{t.signed_electronically}})</p>{{/signed}}
            {{#signer}}<p>({{signer}})</p>{{/signer}}
            {{#position}}<p>{{position}}</p>{{/position}}
          </div>
          {{#secrecy}}<p class="secrecy bottom">{{secrecy}}</p>{{/secrecy}}
        </article>
        """#

    static let letter = #"""
        <div class="letter-page">
        <aside class="card letter-facts" data-live="letter-facts" id="letter-facts">
          <h1>{{kind_thai}}</h1>
          <dl class="facts">
            <dt>{{t.status}}</dt><dd>{{status}}</dd>
            {{#receive}}<dt>{{t.receive_number}}</dt><dd>{{receive}}</dd>{{/receive}}
            {{#origin}}<dt>{{t.from}}</dt><dd>{{origin}}</dd>{{/origin}}
          </dl>
          <p><a href="/letters/{{id}}/print" class="print-link">{{t.print_view}}</a></p>
          {{#has_deliveries}}
          <h2>{{t.deliveries}}</h2>
          <ul class="deliveries">
            {{#deliveries}}<li class="delivery state-{{state}}" data-office="{{office}}">{{t.sent_to}} {{office}} — <span class="delivery-state">{{text}}</span></li>{{/deliveries}}
          </ul>
          {{/has_deliveries}}
          <h2>{{t.attachments}}</h2>
          {{^attachments}}<p>{{t.no_attachments}}</p>{{/attachments}}
          <ul class="attachments">{{#attachments}}<li><a href="{{url}}" download>{{name}}</a> <small>({{size}})</small></li>{{/attachments}}</ul>
        </aside>
        <div class="sheet-frame">
        {{> letter_sheet}}
        </div>
        </div>
        """#

    static let letterPrint = #"""
        <!doctype html>
        <html lang="th">
        <head><meta charset="utf-8"><title>{{subject}}</title>
        <link rel="stylesheet" href="/static/saraban.css"><link rel="stylesheet" href="/static/read.css"></head>
        <body class="print-letter">
        {{> letter_sheet}}
        </body>
        </html>
        """#

    static let sync = #"""
        <section class="card">
          <h1>{{t.sync_status}}</h1>
          <h2>{{t.health}}</h2>
          <dl class="facts">
            <dt>{{t.ready}}</dt><dd class="{{ready_class}}">{{ready}}</dd>
            <dt>{{t.sync_services}}</dt><dd>{{services}}</dd>
            <dt>{{t.documents}}</dt><dd>{{documents}}</dd>
            <dt>{{t.pending}}</dt><dd>{{pending}}</dd>
            <dt>{{t.store_size}}</dt><dd>{{store_size}}</dd>
            <dt>{{t.font}}</dt><dd>{{font}}</dd>
            <dt>{{t.live_listeners}}</dt><dd>{{listeners}}</dd>
          </dl>
        </section>
        <section class="card">
          <h2>{{t.peers}}</h2>
          {{^peers}}<p>{{t.no_peers}}</p>{{/peers}}
          {{#has_peers}}
          <table class="grid">
            <thead><tr><th scope="col">{{t.peer}}</th><th scope="col">{{t.kind}}</th><th scope="col">{{t.last_contact}}</th><th scope="col">{{t.last_synced}}</th><th scope="col">{{t.lag}}</th><th scope="col">{{t.last_error}}</th></tr></thead>
            <tbody>{{#peers}}<tr class="{{row_class}}"><td>{{name}}<br><code>{{node_id}}</code><br><small>{{address}}</small></td><td>{{kind}}</td><td>{{contact}}{{#stale}} <span class="badge warn">{{t.stale}}</span>{{/stale}}</td><td>{{synced}}</td><td class="num">{{they_lack}} / {{we_lack}}</td><td>{{error}}</td></tr>{{/peers}}</tbody>
          </table>
          {{/has_peers}}
        </section>
        <section class="card">
          <h2>{{t.forks}}</h2>
          {{^forks}}<p>{{t.no_forks}}</p>{{/forks}}
          {{#has_forks}}
          <table class="grid">
            <thead><tr><th scope="col">{{t.found}}</th><th scope="col">{{t.peer}}</th><th scope="col">{{t.author}}</th><th scope="col">{{t.sequence}}</th></tr></thead>
            <tbody>{{#forks}}<tr class="bad"><td>{{found}}</td><td><code>{{peer}}</code></td><td><code>{{author}}</code></td><td class="num">{{sequence}}</td></tr>{{/forks}}</tbody>
          </table>
          {{/has_forks}}
        </section>
        """#

    static let audit = #"""
        <section class="card">
          <h1>{{t.audit}}</h1>
          {{^entries}}<p>{{t.no_audit}}</p>{{/entries}}
          {{#has_entries}}
          <table class="grid audit">
            <thead><tr><th scope="col">{{t.when}}</th><th scope="col">{{t.who}}</th><th scope="col">{{t.letter}}</th><th scope="col">{{t.secrecy}}</th><th scope="col">{{t.via}}</th><th scope="col">{{t.outcome}}</th></tr></thead>
            <tbody>{{#entries}}<tr class="{{row_class}}"><td>{{when}}</td><td>{{who}}</td><td><code>{{letter}}</code></td><td>{{secrecy}}</td><td>{{via}}</td><td>{{outcome}}</td></tr>{{/entries}}</tbody>
          </table>
          {{/has_entries}}
        </section>
        """#
}

/// The strings of the reading pages (merged into ``L10n``'s by ``PageRenderer/strings(_:)``).
enum ReadStrings {
    static let table: [String: (th: String, en: String)] = [
        "inbox": ("หนังสือเข้า รอลงรับ", "Inbox: awaiting receipt"),
        "inbox_nav": ("หนังสือเข้า", "Inbox"),
        "inbox_empty": ("ไม่มีหนังสือรอลงรับ", "nothing is waiting to be received"),
        "urgency": ("ชั้นความเร็ว", "Urgency"),
        "secrecy": ("ชั้นความลับ", "Secrecy"),
        "from": ("จาก", "From"),
        "number": ("ที่", "Number"),
        "subject": ("เรื่อง", "Subject"),
        "sent_at": ("ส่งเมื่อ", "Sent"),
        "actions": ("ดำเนินการ", "Actions"),
        "receive": ("ลงรับ", "Receive"),
        "return": ("ส่งคืน", "Return"),
        "return_reason": ("เหตุผลที่ส่งคืน", "Reason for returning"),
        "attachments": ("สิ่งที่แนบ", "Attachments"),
        "no_attachments": ("ไม่มีสิ่งที่แนบ", "no attachments"),
        "received_notice": ("ลงรับแล้ว เลขรับ", "Received: receive number"),
        "returned_notice": ("ส่งคืนแล้ว", "Returned to the sender"),
        "registers": ("ทะเบียน", "Registers"),
        "year": ("ปี", "year"),
        "search": ("ค้นหา", "Search"),
        "state": ("สถานะเลข", "Number state"),
        "all": ("ทั้งหมด", "all"),
        "show": ("แสดง", "Show"),
        "print_view": ("ฉบับพิมพ์", "Print view"),
        "csv": ("ดาวน์โหลด CSV", "Download CSV"),
        "no_entries": ("ยังไม่มีรายการ", "no entries yet"),
        "letters": ("หนังสือ", "Letters"),
        "status": ("สถานะ", "Status"),
        "page": ("หน้า", "page"),
        "receive_number": ("เลขรับ", "Receive number"),
        "deliveries": ("การส่ง", "Deliveries"),
        "sent_to": ("ส่งถึง", "Sent to"),
        "signed_electronically": ("ลงนามอิเล็กทรอนิกส์", "signed electronically"),
        "sync_status": ("สถานะการประสานข้อมูล", "Sync status"),
        "health": ("สุขภาพของเครื่อง", "Node health"),
        "ready": ("พร้อมให้บริการ", "Ready"),
        "sync_services": ("บริการประสานข้อมูล", "Sync services"),
        "documents": ("จำนวนเอกสาร", "Documents"),
        "pending": ("รอส่ง", "Pending changes"),
        "font": ("แบบอักษร", "Font"),
        "live_listeners": ("หน้าที่รอรับการแจ้งเตือน", "Pages listening for updates"),
        "kind": ("ชนิด", "Kind"),
        "last_synced": ("ประสานครบล่าสุด", "Last synced"),
        "lag": ("ค้างส่ง / ค้างรับ", "Lag (they lack / we lack)"),
        "last_error": ("ข้อผิดพลาดล่าสุด", "Last error"),
        "stale": ("ขาดการติดต่อ", "stale"),
        "forks": ("รายงานการแยกสายข้อมูล (fork)", "Fork reports"),
        "no_forks": ("ไม่พบ", "none"),
        "found": ("พบเมื่อ", "Found"),
        "author": ("ผู้เขียน", "Author"),
        "sequence": ("ลำดับ", "Sequence"),
        "audit": ("บันทึกการเปิดดูหนังสือลับ", "Views of secret letters"),
        "no_audit": ("ยังไม่มีการเปิดดู", "no views recorded"),
        "when": ("เมื่อ", "When"),
        "who": ("ผู้ใช้", "Who"),
        "letter": ("หนังสือ", "Letter"),
        "via": ("ทาง", "Via"),
        "outcome": ("ผล", "Outcome"),
        "sync_nav": ("การประสานข้อมูล", "Sync"),
    ]
}

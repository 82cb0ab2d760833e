/// The templates of the writing pages (drafting, routing and work lists, conflicts and history,
/// search), registered beside ``Templates/all``. `{{x}}` is HTML-escaped; none is unescaped.
enum WriteTemplates {
    static let all: [(String, String)] = [
        ("letters_new", lettersNew), ("draft", draft), ("work", work), ("conflicts", conflicts), ("history", history),
        ("search", search),
    ]

    static let lettersNew = #"""
        <section class="card">
          <h1>{{t.new_letter}}</h1>
          <ul class="kinds">
          {{#kinds}}<li><a href="/letters/new?kind={{value}}">{{label}}</a></li>{{/kinds}}
          </ul>
        </section>
        """#

    /// The draft form: every field with its label and, beside it, what SarabanOffice says of its
    /// value; the body as text with the copy it was loaded from; then register, sign and send.
    static let draft = #"""
        <section class="card">
          <h1>{{heading}}</h1>
          {{#problem}}<p class="error" role="alert" id="problem">{{problem}}</p>{{/problem}}
          {{#notice}}<p class="notice" role="status" id="notice">{{notice}}</p>{{/notice}}
          {{#id}}<p class="facts"><span>{{t.status}}: <strong id="status">{{status}}</strong></span>{{#number}} · <span>{{t.number}}: <strong id="number">{{number}}</strong></span>{{/number}} · <a href="/letters/{{id}}/history">{{t.history}}</a></p>{{/id}}
          <form method="post" action="{{action}}" class="stack" id="draft-form">
            <input type="hidden" name="_csrf" value="{{csrf}}">
            <input type="hidden" name="kind" value="{{kind}}">
            {{#body_base}}<input type="hidden" name="body_base" value="{{body_base}}">{{/body_base}}
            {{#fields}}
            <div class="field{{#issue}} invalid{{/issue}}">
              <label for="f-{{name}}">{{label}}{{#required}} <abbr title="{{t.required}}">*</abbr>{{/required}}</label>
              <input type="hidden" name="orig_{{name}}" value="{{value}}">
              {{#has_choices}}
              <select id="f-{{name}}" name="{{name}}"{{#issue}} aria-describedby="e-{{name}}"{{/issue}}{{#locked}} disabled{{/locked}}>
                <option value=""></option>
                {{#choices}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/choices}}
              </select>
              {{/has_choices}}
              {{^has_choices}}
              {{#multiline}}<textarea id="f-{{name}}" name="{{name}}" rows="12"{{#issue}} aria-describedby="e-{{name}}"{{/issue}}{{#locked}} readonly{{/locked}}>{{value}}</textarea>{{/multiline}}
              {{^multiline}}<input id="f-{{name}}" name="{{name}}" value="{{value}}"{{#issue}} aria-describedby="e-{{name}}"{{/issue}}{{#locked}} readonly{{/locked}}>{{/multiline}}
              {{/has_choices}}
              {{#issue}}<p class="field-error" id="e-{{name}}">{{issue}}</p>{{/issue}}
            </div>
            {{/fields}}
            {{#editable}}<button type="submit" id="save">{{t.save}}</button>{{/editable}}
          </form>
        </section>
        {{#id}}
        <section class="card">
          <h2>{{t.register_sign_send}}</h2>
          {{#can_register}}
          <form method="post" action="/letters/{{id}}/register" class="inline">
            <input type="hidden" name="_csrf" value="{{csrf}}">
            <button type="submit" id="register">{{t.register}}</button>
          </form>
          {{/can_register}}
          {{#can_sign}}
          <form method="post" action="/letters/{{id}}/sign" class="stack" id="sign-form">
            <input type="hidden" name="_csrf" value="{{csrf}}">
            <label for="officer">{{t.officer}}</label>
            <select id="officer" name="officer">{{#officers}}<option value="{{name}}">{{name}} ({{position}})</option>{{/officers}}</select>
            <label for="passphrase">{{t.passphrase}}</label>
            <input id="passphrase" name="passphrase" type="password" autocomplete="off" required>
            <button type="submit" id="sign">{{t.sign}}</button>
          </form>
          {{/can_sign}}
          {{#has_signatures}}<ul class="signatures">{{#signatures}}<li>{{t.signed_by}} {{officer}} ({{position}}) {{when}}</li>{{/signatures}}</ul>{{/has_signatures}}
          {{#can_send}}
          <form method="post" action="/letters/{{id}}/send" class="stack" id="send-form">
            <input type="hidden" name="_csrf" value="{{csrf}}">
            <fieldset><legend>{{t.send_to}}</legend>
            {{#offices}}<label><input type="checkbox" name="to" value="{{node}}"> {{office}}{{#code}} ({{code}}){{/code}}</label>{{/offices}}
            {{^offices}}<p>{{t.no_offices}}</p>{{/offices}}
            </fieldset>
            <button type="submit" id="send">{{t.send}}</button>
          </form>
          {{/can_send}}
          {{#has_deliveries}}<ul class="deliveries">{{#deliveries}}<li>{{office}}</li>{{/deliveries}}</ul>{{/has_deliveries}}
        </section>
        <section class="card">
          <h2>{{t.route}}</h2>
          {{#has_routing}}<ol class="routing">{{#routing}}<li>{{from}} → {{to}}: {{instruction}} <small>{{date}} {{time}}</small></li>{{/routing}}</ol>{{/has_routing}}
          {{#can_route}}
          <form method="post" action="/letters/{{id}}/route" class="stack" id="route-form">
            <input type="hidden" name="_csrf" value="{{csrf}}">
            <label for="route-to">{{t.route_to}}</label>
            <input id="route-to" name="to" required>
            <label for="route-note">{{t.instruction}}</label>
            <input id="route-note" name="note">
            <label for="route-due">{{t.due}}</label>
            <input id="route-due" name="due" placeholder="{{due_example}}">
            <button type="submit" id="route">{{t.route}}</button>
          </form>
          {{/can_route}}
        </section>
        {{/id}}
        """#

    static let work = #"""
        <section class="card">
          <h1>{{t.work}}</h1>
          <h2 id="assigned">{{t.assigned_to_me}}</h2>
          {{^assigned}}<p>{{t.nothing}}</p>{{/assigned}}
          {{#has_assigned}}
          <table class="grid"><thead><tr><th scope="col">{{t.subject}}</th><th scope="col">{{t.number}}</th><th scope="col">{{t.instruction}}</th><th scope="col">{{t.due}}</th></tr></thead>
          <tbody>{{#assigned}}<tr{{#overdue}} class="overdue"{{/overdue}}><td><a href="/letters/{{id}}/edit">{{subject}}</a></td><td>{{number}}</td><td>{{instruction}}</td><td>{{due}}{{#overdue}} <strong class="overdue-mark">{{t.overdue}}</strong>{{/overdue}}</td></tr>{{/assigned}}</tbody></table>
          {{/has_assigned}}
          <h2 id="to-sign">{{t.awaiting_signature}}</h2>
          {{^to_sign}}<p>{{t.nothing}}</p>{{/to_sign}}
          {{#has_to_sign}}
          <table class="grid"><thead><tr><th scope="col">{{t.subject}}</th><th scope="col">{{t.status}}</th><th scope="col">{{t.due}}</th></tr></thead>
          <tbody>{{#to_sign}}<tr{{#overdue}} class="overdue"{{/overdue}}><td><a href="/letters/{{id}}/edit">{{subject}}</a></td><td>{{status}}</td><td>{{due}}{{#overdue}} <strong class="overdue-mark">{{t.overdue}}</strong>{{/overdue}}</td></tr>{{/to_sign}}</tbody></table>
          {{/has_to_sign}}
        </section>
        """#

    static let conflicts = #"""
        <section class="card">
          <h1>{{t.conflicts}}</h1>
          {{#notice}}<p class="notice" role="status" id="notice">{{notice}}</p>{{/notice}}
          {{^conflicts}}<p id="no-conflicts">{{t.no_conflicts}}</p>{{/conflicts}}
          {{#conflicts}}
          <article class="conflict">
            <h2><a href="/letters/{{document}}/history">{{title}}</a> <small>{{field}}</small></h2>
            <table class="grid"><thead><tr><th scope="col">{{t.value}}</th><th scope="col">{{t.who}}</th><th scope="col">{{t.when}}</th><th scope="col"></th></tr></thead>
            <tbody>
            {{#values}}<tr><td>{{value}}{{#shown}} <small>({{t.shown}})</small>{{/shown}}</td><td>{{who}}</td><td>{{when}}</td><td>
              {{#resolvable}}<form method="post" action="/conflicts/resolve" class="inline">
                <input type="hidden" name="_csrf" value="{{csrf}}">
                <input type="hidden" name="document" value="{{document}}">
                <input type="hidden" name="field" value="{{field}}">
                <input type="hidden" name="keep" value="{{keep}}">
                <button type="submit" class="resolve">{{action}}</button>
              </form>{{/resolvable}}
            </td></tr>{{/values}}
            </tbody></table>
          </article>
          {{/conflicts}}
        </section>
        """#

    static let history = #"""
        <section class="card">
          <h1>{{t.history}}: {{title}}</h1>
          <table class="grid"><thead><tr><th scope="col">{{t.when}}</th><th scope="col">{{t.who}}</th><th scope="col">{{t.what}}</th><th scope="col">{{t.change}}</th></tr></thead>
          <tbody>{{#entries}}<tr><td>{{when}}</td><td>{{who}}</td><td>{{#ops}}<div>{{.}}</div>{{/ops}}</td><td><code>{{change}}</code></td></tr>{{/entries}}</tbody></table>
        </section>
        """#

    static let search = #"""
        <section class="card">
          <h1>{{t.search}}</h1>
          <form method="get" action="/search" class="stack" role="search">
            <label for="q">{{t.search_text}}</label>
            <input id="q" name="q" value="{{q}}">
            <label for="from">{{t.date_from}}</label>
            <input id="from" name="from" value="{{from}}" placeholder="{{date_example}}">
            <label for="to">{{t.date_to}}</label>
            <input id="to" name="to" value="{{to}}" placeholder="{{date_example}}">
            <button type="submit">{{t.search}}</button>
          </form>
          {{#problem}}<p class="error" role="alert">{{problem}}</p>{{/problem}}
          {{#searched}}
          <p id="hit-count">{{count}} {{t.results}}</p>
          <table class="grid"><thead><tr><th scope="col">{{t.subject}}</th><th scope="col">{{t.number}}</th><th scope="col">{{t.sender}}</th><th scope="col">{{t.date}}</th></tr></thead>
          <tbody>{{#hits}}<tr><td><a href="/letters/{{id}}/edit">{{subject}}</a></td><td>{{number}}</td><td>{{sender}}</td><td>{{date}}</td></tr>{{/hits}}</tbody></table>
          {{/searched}}
        </section>
        """#
}

/// The strings of the writing pages (`{{t.key}}`), beside ``L10n/table``.
enum WriteL10n {
    static let table: [String: (th: String, en: String)] = [
        "new_letter": ("ร่างหนังสือใหม่", "New letter"),
        "letters": ("หนังสือ", "Letters"),
        "status": ("สถานะ", "Status"),
        "number": ("ที่", "Number"),
        "history": ("ประวัติการแก้ไข", "History"),
        "required": ("ต้องกรอก", "required"),
        "save": ("บันทึก", "Save"),
        "register_sign_send": ("ลงทะเบียน ลงนาม และส่ง", "Register, sign and send"),
        "register": ("ลงทะเบียนออกเลข", "Register (take a number)"),
        "officer": ("ผู้ลงนาม", "Officer"),
        "passphrase": ("รหัสผ่านกุญแจลงนาม", "Signing key passphrase"),
        "sign": ("ลงนาม", "Sign"),
        "signed_by": ("ลงนามโดย", "Signed by"),
        "send_to": ("ส่งถึงสำนักงาน", "Send to offices"),
        "no_offices": ("ยังไม่รู้จักสำนักงานอื่น", "no other office is known yet"),
        "send": ("ส่งหนังสือ", "Send"),
        "route": ("เกษียนหนังสือ", "Route (เกษียน)"),
        "route_to": ("ถึง", "To"),
        "instruction": ("คำสั่งการ", "Instruction"),
        "due": ("กำหนดเสร็จ", "Due"),
        "work": ("งานของฉัน", "My work"),
        "assigned_to_me": ("มอบหมายให้ฉัน", "Assigned to me"),
        "awaiting_signature": ("รอฉันลงนาม", "Waiting for my signature"),
        "nothing": ("ไม่มีรายการ", "nothing"),
        "subject": ("เรื่อง", "Subject"),
        "overdue": ("เกินกำหนด", "overdue"),
        "conflicts": ("ข้อมูลขัดแย้ง", "Conflicts"),
        "no_conflicts": ("ไม่มีข้อมูลขัดแย้ง", "no conflicts"),
        "value": ("ค่า", "Value"),
        "who": ("ผู้แก้ไข", "Who"),
        "when": ("เวลา", "When"),
        "what": ("การแก้ไข", "What"),
        "change": ("รหัสการแก้ไข", "Change"),
        "shown": ("ที่แสดงอยู่", "shown"),
        "keep_this": ("ใช้ค่านี้", "Keep this"),
        "keep_element": ("เก็บไว้", "Keep it"),
        "drop_element": ("นำออก", "Remove it"),
        "search": ("ค้นหา", "Search"),
        "search_text": ("เรื่อง เลขที่ ผู้ส่ง หรือข้อความ", "Subject, number, sender or text"),
        "date_from": ("ตั้งแต่วันที่", "From date"),
        "date_to": ("ถึงวันที่", "To date"),
        "results": ("รายการ", "results"),
        "sender": ("จาก", "From"),
        "date": ("วันที่", "Date"),
        "saved": ("บันทึกแล้ว", "Saved"),
        "fix_fields": ("ยังไม่ได้บันทึก กรุณาแก้ช่องที่มีข้อความแจ้งเตือน", "Nothing was saved: correct the fields marked below"),
        "registered": ("ลงทะเบียนแล้ว เลขที่", "Registered as"),
        "signed": ("ลงนามแล้ว", "Signed"),
        "sent": ("ส่งแล้วถึง", "Sent to"),
        "routed": ("เกษียนแล้ว", "Routed"),
        "resolved": ("แก้ข้อมูลขัดแย้งแล้ว", "Conflict resolved"),
    ]
}

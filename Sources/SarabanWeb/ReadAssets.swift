import NIOCore

/// The stylesheet and script of the reading pages: the letter on an A4 sheet with the Regulation's
/// margins, the print views, the inbox badges, and the live updates (server-sent events), written
/// by hand and served by the node (``Assets/response(_:)`` looks here after its own table).
extension Assets {
    static let readFiles: [String: File] = [
        "read.css": File(contentType: "text/css; charset=utf-8", bytes: ByteBuffer(string: readCSS)),
        "live.js": File(contentType: "text/javascript; charset=utf-8", bytes: ByteBuffer(string: liveJS)),
    ]

    /// A4 (21 × 29.7 cm); margins of the Regulation's forms as the government's template sets them:
    /// 3 cm left, 2 cm right, 2.5 cm top (the Garuda 1.5 cm from the edge), 2 cm bottom; 16 pt
    /// type (TH Sarabun's size, Laksaman has its metrics); a paragraph's first line indented 2.5 cm.
    static let readCSS = #"""
        nav.tabs a { margin-right: 1rem; }
        nav.tabs a[aria-current] { font-weight: 700; text-decoration: none; border-bottom: 3px solid var(--accent); }
        form.filters { display: flex; flex-wrap: wrap; gap: .4rem .6rem; align-items: center; margin: .5rem 0; }
        .scroll { overflow-x: auto; }
        table.register td { font-size: .85rem; }
        tr.state-ยกเลิก td, tr.state-หมดอายุการจอง td { color: var(--muted); text-decoration: line-through; }
        .badge { display: inline-block; padding: 0 .45rem; border-radius: 3px; font-size: .85rem; border: 1px solid var(--line); }
        .badge.urgency-most-urgent { background: var(--bad); color: #fff; border-color: var(--bad); font-weight: 700; }
        .badge.urgency-very-urgent { background: #c2410c; color: #fff; border-color: #c2410c; }
        .badge.urgency-urgent { background: #fde68a; color: #1b1b1b; }
        .badge.secret, .badge.warn { background: #fff3f3; color: var(--bad); border-color: var(--bad); font-weight: 700; }
        td.actions { white-space: nowrap; }
        td.actions details { display: inline-block; margin-left: .5rem; }
        tr.warn td { background: #fffbea; }
        tr.bad td, .bad { color: var(--bad); }
        .ok { color: var(--ok); }
        .letter-page { display: grid; grid-template-columns: minmax(14rem, 20rem) 1fr; gap: 1rem; align-items: start; }
        @media (max-width: 60rem) { .letter-page { grid-template-columns: 1fr; } }
        ul.deliveries, ul.attachments { padding-left: 1.2rem; }
        li.delivery.state-received { color: var(--ok); }
        li.delivery.state-returned { color: var(--bad); }
        .sheet-frame { overflow-x: auto; }
        .sheet { page: letter; width: 21cm; min-height: 29.7cm; padding: 2.5cm 2cm 2cm 3cm; margin: 0 auto; background: #fff;
          color: #000; box-shadow: 0 1px 6px rgba(0, 0, 0, .25); font-family: "SarabanThai", "Laksaman", "TH Sarabun New", serif;
          font-size: 16pt; line-height: 1.25; position: relative; }
        .sheet p { margin: 0; }
        .sheet .head { display: grid; grid-template-columns: 1fr 3cm 1fr; align-items: end; min-height: 3cm; }
        .sheet .head .agency { text-align: left; padding-left: 1cm; }
        .sheet .emblem { height: 3cm; }
        .sheet .date { margin: .6em 0 .6em 50%; }
        .sheet .subject, .sheet .salutation, .sheet .reference, .sheet .enclosures { margin-top: .4em; }
        .sheet .label { display: inline-block; min-width: 1.6cm; }
        .sheet .body { margin-top: .6em; }
        .sheet .body p { text-indent: 2.5cm; margin-top: .4em; text-align: justify; text-justify: inter-character; }
        .sheet .closing { margin: 1em 0 0 50%; text-indent: -2em; padding-left: 2em; }
        .sheet .signature { margin: 2.5em 0 0 45%; text-align: center; width: 50%; }
        .sheet .signed-mark { font-size: 12pt; color: #444; }
        .sheet .urgency-stamp { position: absolute; top: 1.4cm; left: 3cm; font-size: 24pt; font-weight: 700; color: #b00; border: 2px solid #b00;
          padding: 0 .3em; }
        .sheet .secrecy { text-align: center; font-size: 20pt; font-weight: 700; color: #b00; }
        .sheet .secrecy.top { position: absolute; top: .6cm; left: 0; right: 0; }
        .sheet .secrecy.bottom { position: absolute; bottom: .6cm; left: 0; right: 0; }
        .sheet .memo-title { text-align: center; font-size: 29pt; margin: 0 0 .3em; }
        .sheet .memo-line { border-bottom: 1px dotted #000; margin-top: .2em; }
        .sheet .memo-line.split { display: flex; justify-content: space-between; }
        body.print-letter, body.print-register { background: #fff; margin: 0; }
        body.print-letter .sheet { box-shadow: none; }
        body.print-register { padding: 1cm; }
        table.register-print { page: register; border-collapse: collapse; width: 100%; font-size: 12pt; }
        table.register-print th, table.register-print td { border: 1px solid #000; padding: 2px 4px; vertical-align: top; }
        @page letter { size: A4; margin: 2.5cm 2cm 2cm 3cm; }
        @page register { size: A4 landscape; margin: 1.5cm; }
        @media print {
          header.top, .skip, aside.letter-facts, form.filters, nav.tabs, p.links { display: none; }
          .letter-page { display: block; }
          main { max-width: none; margin: 0; padding: 0; }
          .sheet { width: auto; min-height: 0; padding: 0; box-shadow: none; }
          .sheet .urgency-stamp { top: -1.1cm; left: 0; }
          .sheet .secrecy.top { top: -1.9cm; }
          .sheet .secrecy.bottom { position: static; margin-top: 1em; }
          body.print-register { padding: 0; }
        }
        """#

    /// Live updates: listens to `/events` and, on a dispatch or a receipt, fetches the page again
    /// and swaps in its `data-live` parts (so the server renders them, as without script). Also
    /// filters a register's rows as the user types. `data-live-state` on <html> says whether the
    /// event stream is open (the browser tests wait for it).
    static let liveJS = #"""
        (function () {
          "use strict";
          var root = document.documentElement;
          var input = document.querySelector("input[data-filter]");
          if (input) {
            var table = document.getElementById(input.getAttribute("data-filter"));
            input.addEventListener("input", function () {
              var q = input.value.trim().toLowerCase();
              var rows = table ? table.tBodies[0].rows : [];
              for (var i = 0; i < rows.length; i++) {
                rows[i].hidden = q !== "" && rows[i].textContent.toLowerCase().indexOf(q) < 0;
              }
            });
          }
          var parts = document.querySelectorAll("[data-live]");
          if (!parts.length || !window.EventSource) { return; }
          var events = 0;
          var source = new EventSource("/events");
          source.onopen = function () { root.setAttribute("data-live-state", "open"); };
          source.onerror = function () { root.setAttribute("data-live-state", "retrying"); };
          function refresh() {
            fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
              .then(function (r) { return r.ok ? r.text() : null; })
              .then(function (text) {
                if (text === null) { return; }
                var fresh = new DOMParser().parseFromString(text, "text/html");
                var now = document.querySelectorAll("[data-live]");
                for (var i = 0; i < now.length; i++) {
                  var next = fresh.getElementById(now[i].id);
                  if (next) { now[i].replaceWith(document.importNode(next, true)); }
                }
                events += 1;
                root.setAttribute("data-live-events", String(events));
              });
          }
          source.addEventListener("dispatch", refresh);
          source.addEventListener("receipt", refresh);
        })();
        """#
}

import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The web app's static files: one stylesheet and one script written by hand (no build chain), and
/// the Thai font from the system, all served by the node itself (offices are often offline: nothing
/// comes from a CDN). Only the names in ``Assets/files`` are served; no path reaches the disk.
enum Assets {
    /// The Thai font: Laksaman from Debian's fonts-thai-tlwg (metrics compatible with TH Sarabun,
    /// the government's official font), else TH Sarabun New when installed. Read once.
    static let fontCandidates: [(regular: String, bold: String)] = [
        ("/usr/share/fonts/truetype/tlwg/Laksaman.ttf", "/usr/share/fonts/truetype/tlwg/Laksaman-Bold.ttf"),
        ("/usr/share/fonts/opentype/tlwg/Laksaman.otf", "/usr/share/fonts/opentype/tlwg/Laksaman-Bold.otf"),
        ("/usr/share/fonts/truetype/thsarabun-new/THSarabunNew.ttf", "/usr/share/fonts/truetype/thsarabun-new/THSarabunNew Bold.ttf"),
        ("/usr/local/share/fonts/THSarabunNew.ttf", "/usr/local/share/fonts/THSarabunNew Bold.ttf"),
    ]

    struct File: Sendable {
        var contentType: String
        var bytes: ByteBuffer
    }

    /// Name under `/static/` → file.
    static let files: [String: File] = {
        var out: [String: File] = [
            "saraban.css": File(contentType: "text/css; charset=utf-8", bytes: ByteBuffer(string: css)),
            "saraban.js": File(contentType: "text/javascript; charset=utf-8", bytes: ByteBuffer(string: js)),
        ]
        let fm = FileManager.default
        if let c = fontCandidates.first(where: { fm.isReadableFile(atPath: $0.regular) }) {
            let type = c.regular.hasSuffix(".otf") ? "font/otf" : "font/ttf"
            if let d = fm.contents(atPath: c.regular) { out["fonts/thai.ttf"] = File(contentType: type, bytes: ByteBuffer(bytes: d)) }
            if let d = fm.contents(atPath: c.bold) { out["fonts/thai-bold.ttf"] = File(contentType: type, bytes: ByteBuffer(bytes: d)) }
        }
        return out
    }()

    /// Which font file is served (for the health page and the docs), nil when none is installed.
    static var fontSource: String? {
        fontCandidates.first { FileManager.default.isReadableFile(atPath: $0.regular) }?.regular
    }

    static func response(_ name: String) -> Response? {
        guard let f = files[name] ?? readFiles[name] else { return nil }
        return Response(
            status: .ok, headers: [.contentType: f.contentType, .cacheControl: "public, max-age=3600"],
            body: .init(byteBuffer: f.bytes))
    }

    static let css = #"""
        @font-face { font-family: "SarabanThai"; src: url("/static/fonts/thai.ttf"); font-weight: 400; font-display: block; }
        @font-face { font-family: "SarabanThai"; src: url("/static/fonts/thai-bold.ttf"); font-weight: 700; font-display: block; }
        :root { --ink: #1b1b1b; --paper: #ffffff; --muted: #4a4a4a; --line: #c8c8c8; --accent: #0b4f8a; --bad: #a4000f;
          --ok: #1d6b2f; --bg: #f3f4f6; }
        * { box-sizing: border-box; }
        html { font-family: "SarabanThai", "Laksaman", "TH Sarabun New", "Garuda", sans-serif; font-size: 20px; line-height: 1.5;
          color: var(--ink); background: var(--bg); }
        body { margin: 0; }
        :focus-visible { outline: 3px solid #f0a500; outline-offset: 2px; }
        a { color: var(--accent); }
        .skip { position: absolute; left: -999px; top: 0; background: var(--paper); padding: .3rem .6rem; }
        .skip:focus { left: .5rem; z-index: 10; }
        .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
        header.top { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; align-items: center; justify-content: space-between;
          padding: .5rem 1rem; background: var(--accent); color: #fff; }
        header.top a, header.top button { color: #fff; }
        header.top .app { font-weight: 700; }
        header.top .office { opacity: .95; }
        header.top nav a { margin-right: 1rem; }
        .who { display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; }
        form.inline { display: inline; }
        button { font: inherit; padding: .25rem .9rem; border: 1px solid var(--accent); background: var(--accent); color: #fff;
          border-radius: 4px; cursor: pointer; }
        header.top button { background: transparent; border-color: #fff; }
        main { max-width: 70rem; margin: 1rem auto; padding: 0 1rem; }
        .card { background: var(--paper); border: 1px solid var(--line); border-radius: 6px; padding: 1rem 1.25rem; margin-bottom: 1rem; }
        .narrow { max-width: 26rem; margin: 3rem auto; }
        h1 { font-size: 1.6rem; margin: 0 0 .75rem; line-height: 1.3; }
        h2 { font-size: 1.3rem; margin: 0 0 .5rem; }
        .stack { display: flex; flex-direction: column; gap: .35rem; }
        .stack button { margin-top: .75rem; align-self: flex-start; }
        input, select, textarea { font: inherit; padding: .3rem .5rem; border: 1px solid #767676; border-radius: 4px; }
        .error { color: var(--bad); font-weight: 700; }
        .notice { color: var(--ok); }
        /* Writing pages (DraftPages, WorkPages) */
        .field { display: flex; flex-direction: column; gap: .2rem; margin-bottom: .4rem; }
        .field input, .field select, .field textarea { max-width: 48rem; font: inherit; }
        .field.invalid input, .field.invalid select, .field.invalid textarea { border: 2px solid var(--bad); }
        .field-error { color: var(--bad); margin: 0; }
        tr.overdue td { background: #fdecea; }
        .overdue-mark { color: var(--bad); }
        fieldset label { display: block; }
        .second { color: var(--muted); }
        dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
        dl.facts dt { color: var(--muted); }
        dl.facts dd { margin: 0; }
        table.grid { border-collapse: collapse; width: 100%; }
        table.grid th, table.grid td { border-bottom: 1px solid var(--line); padding: .25rem .5rem; text-align: left; vertical-align: top; }
        td.num { text-align: right; font-variant-numeric: tabular-nums; }
        code { font-size: .8em; word-break: break-all; }
        @media print { header.top, .skip { display: none; } body, html { background: #fff; } .card { border: none; } }
        """#

    static let js = #"""
        // Saraban's only script: hand-written, served by the node, nothing from the internet.
        // Pages work without it; it adds the CSRF header to the app's own fetch() calls.
        (function () {
          "use strict";
          var meta = document.querySelector('meta[name="csrf-token"]');
          window.saraban = {
            csrf: meta ? meta.getAttribute("content") : null,
            post: function (url, body) {
              return fetch(url, { method: "POST", credentials: "same-origin",
                headers: { "Content-Type": "application/json", "X-CSRF-Token": window.saraban.csrf || "" },
                body: JSON.stringify(body || {}) });
            }
          };
          document.documentElement.classList.add("js");
        })();
        """#
}

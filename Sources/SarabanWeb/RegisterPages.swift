import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SarabanNode
import SarabanOffice

// The registers (receive, send, circular, order books) by year: a page with filter and search, a
// print view, the CLI's CSV, and JSON.

extension WebApp {
    func addRegisters(_ router: Router<WebContext>) {
        if options.relay { return }
        router.get("/registers") { [self] _, _ in
            Response(status: .seeOther, headers: [.location: "/registers/receive?year=\(node.registerYear(at: now))"])
        }
        router.get("/registers/{book}") { [self] request, context in
            let (s, user) = try context.web.sessionUser()
            let lang = context.web.lang
            let book = try registerBook(context)
            let q = try request.query()
            let search = (q["q"] ?? "").trimmingCharacters(in: .whitespaces)
            let state = q["state"] ?? ""
            // One page of the rows at a time (`page`, `per_page` as the letter list's): a year's
            // book holds thousands of lines; the print view and the CSV keep them all.
            let (year, page, perPage) = try listParameters(request)
            let clearance = context.web.principal?.clearance ?? .none
            let currentYear = node.registerYear(at: now)
            // Kept per content version and per everything the page shows (ResponseCache.swift).
            let version = try node.contentVersion()
            let key: [any CustomStringConvertible] = [
                "register page", book.english, year, currentYear, search, state, page, perPage, clearance.rawValue, lang.rawValue,
                PageRenderer.day(now), user.name, user.displayName, user.role.rawValue,
            ]
            let body = try cachedPage(key, version: version, csrf: s.csrf) { csrf in
                let form = try node.registerForms.form(book, year: year, clearance: clearance)
                let t = PageRenderer.strings(lang)
                let rows = Self.filter(form, search: search, state: state)
                let pageCount = max(1, (rows.count + perPage - 1) / perPage)
                let start = min(rows.count, (page - 1) * perPage)
                let slice = rows[start..<min(rows.count, start + perPage)]
                let stateNames: [(String, String)] = [("", t["all"]!)] + RegisterLine.State.allStates.map { ($0.rawValue, $0.rawValue) }
                let years = Set(
                    (try node.cachedRegisters(version: version)).filter { $0.book == book }.map(\.year) + [year, currentYear])
                var filters = "year=\(year)"
                if !search.isEmpty { filters += "&q=" + AuthMiddleware.percentEncode(search) }
                if !state.isEmpty { filters += "&state=" + AuthMiddleware.percentEncode(state) }
                if perPage != 50 { filters += "&per_page=\(perPage)" }
                var values = Self.dropEmpty([
                    "book": book.english, "book_thai": book.thaiName, "year": year, "q": search,
                    "columns": RegisterForm.columns(book),
                    "rows": slice.map { ["state": $0.state.rawValue, "cells": Self.linkedCells(form, $0)] },
                    "shown": rows.count, "total": form.rows.count, "page": page, "pages": pageCount, "filters": filters,
                    "books": RegisterBook.allCases.map { ["key": $0.english, "name": $0.thaiName, "current": $0 == book, "year": year] },
                    "years": years.sorted(by: >).map { ["y": $0, "selected": $0 == year] },
                    "states": stateNames.map { ["value": $0.0, "label": $0.1, "selected": $0.0 == state] },
                ])
                if pageCount > 1 { values["paged"] = true }
                if page > 1 { values["prev"] = page - 1 }
                if page < pageCount { values["next"] = page + 1 }
                let html = pages.page("registers", title: book.thaiName, lang: lang, user: user, csrf: csrf, values: values)
                // A reserved number expires with time: the page holds until the first one does.
                let until = form.rows.compactMap { $0.state == .reserved ? $0.reservedUntil : nil }.min()
                return (html, until)
            }
            return pages.html(body)
        }
        router.get("/registers/{book}/print") { [self] request, context in
            _ = try context.web.sessionUser()
            let (book, year, form) = try registerForm(context, request)
            let q = try request.query()
            let rows = Self.filter(form, search: (q["q"] ?? "").trimmingCharacters(in: .whitespaces), state: q["state"] ?? "")
            let values: [String: Any] = [
                "lang": context.web.lang.rawValue, "t": PageRenderer.strings(context.web.lang), "office": form.office,
                "book_thai": book.thaiName, "year": year, "columns": RegisterForm.columns(book),
                "rows": rows.map { ["cells": form.cells($0)] },
            ]
            return pages.html(ByteBuffer(string: pages.library.render(values, withTemplate: "register_print") ?? ""))
        }
        router.get("/registers/{book}/csv") { [self] request, context in
            let (book, year, form) = try registerForm(context, request)
            return Response(
                status: .ok,
                headers: [
                    .contentType: "text/csv; charset=utf-8",
                    .contentDisposition: "attachment; filename=\"register-\(book.english)-\(year).csv\"",
                    .cacheControl: "no-store",
                ],
                body: .init(byteBuffer: ByteBuffer(string: form.csv())))
        }
        router.get("/api/v1/registers/{book}") { [self] request, context in
            let (book, year, form) = try registerForm(context, request)
            return try Self.json(
                RegisterJSON(
                    book: book.english, book_thai: book.thaiName, year: year, office: form.office,
                    columns: RegisterForm.columns(book), lines: form.rows.map(RegisterLineJSON.init)))
        }
    }

    /// The book of the route (`receive`, `send`, `circular`, `order` or the Thai name; else 404),
    /// the year (`?year=`, BE; default the current register year) and its form, with subjects
    /// above the caller's clearance withheld.
    func registerForm(_ context: WebContext, _ request: Request) throws -> (RegisterBook, Int, RegisterForm) {
        let book = try registerBook(context)
        let (year, _, _) = try listParameters(request)
        let form = try node.registerForms.form(book, year: year, clearance: context.web.principal?.clearance ?? .none)
        return (book, year, form)
    }

    /// The book of the route (`receive`, `send`, `circular`, `order` or the Thai name; else 404).
    func registerBook(_ context: WebContext) throws -> RegisterBook {
        guard let text = context.parameters.get("book"), let book = try? RegisterBook(parsing: text) else {
            throw WebError(.notFound, "not-found", th: "ไม่มีทะเบียนนี้ ใช้ receive, send, circular หรือ order",
                en: "no such register: use receive, send, circular or order")
        }
        return book
    }

    /// A row's cells for the page: the subject links to the letter's page when the line names one.
    static func linkedCells(_ form: RegisterForm, _ r: RegisterForm.Row) -> [[String: String]] {
        form.cells(r).enumerated().map { i, text in
            var cell = ["text": text]
            if i == 5, let letter = r.letter { cell["link"] = "/letters/\(segment(letter))" }
            return cell
        }
    }

    /// The rows whose cells contain `search` (any part of any column, case-insensitive: Thai has no
    /// spaces between words) and, when given, whose number is in `state`.
    static func filter(_ form: RegisterForm, search: String, state: String) -> [RegisterForm.Row] {
        form.rows.filter { r in
            (state.isEmpty || r.state.rawValue == state)
                && (search.isEmpty || form.cells(r).contains { $0.range(of: search, options: [.caseInsensitive]) != nil })
        }
    }
}

extension RegisterLine.State {
    static var allStates: [RegisterLine.State] { [.used, .reserved, .expired, .cancelled] }
}

struct RegisterJSON: Encodable {
    var book: String
    var book_thai: String
    var year: Int
    var office: String
    var columns: [String]
    var lines: [RegisterLineJSON]
}

/// One line of a register in `GET /api/v1/registers/{book}`.
struct RegisterLineJSON: Encodable {
    var number: Int
    var state: String
    var letter: String?
    var letter_number: String
    var date: String
    var from: String
    var to: String
    var subject: String
    var withheld: Bool
    var action: String
    var note: String
    var registered: String?
    var time: String?

    init(_ r: RegisterForm.Row) {
        number = r.number
        state = r.state.rawValue
        letter = r.letter
        letter_number = r.letterNumber
        date = r.date
        from = r.from
        to = r.to
        subject = r.subject
        withheld = r.withheld
        action = r.action
        note = r.note
        registered = r.registered?.iso
        time = r.time
    }
}

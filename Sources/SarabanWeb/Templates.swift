/// The page templates (Mustache), kept in the binary: the node serves its web app with nothing to
/// install beside it and nothing fetched at run time. `{{x}}` is HTML-escaped; `{{{content}}}`
/// (the layout's page) is the only unescaped value.
enum Templates {
    static let all: [(String, String)] = [
        ("layout", layout), ("login", login), ("error", error), ("home", home),
    ]

    static let layout = #"""
        <!doctype html>
        <html lang="{{lang}}">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        {{#csrf}}<meta name="csrf-token" content="{{csrf}}">{{/csrf}}
        <title>{{title}} · {{t.app}}</title>
        <link rel="stylesheet" href="/static/saraban.css">
        <script src="/static/saraban.js" defer></script>
        <link rel="stylesheet" href="/static/read.css"><script src="/static/live.js" defer></script>
        </head>
        <body>
        <a class="skip" href="#main">{{t.skip}}</a>
        <header class="top">
          <div class="brand"><span class="app">{{t.app}}</span> <span class="office">{{office}}</span></div>
          <nav aria-label="{{t.app}}">
            {{#user}}<a href="/">{{t.home}}</a>{{/user}}
            {{#user}}<a href="/inbox">{{t.inbox_nav}}</a> <a href="/registers">{{t.registers}}</a> <a href="/letters">{{t.letters}}</a> <a href="/sync">{{t.sync_nav}}</a>{{#admin}} <a href="/audit">{{t.audit}}</a>{{/admin}}{{/user}}
            {{#user}}<a href="/letters/new">{{t.new_letter}}</a> <a href="/work">{{t.work}}</a> <a href="/conflicts">{{t.conflicts}}</a> <a href="/search">{{t.search}}</a>{{/user}}
          </nav>
          <div class="who">
            <span class="today" title="{{t.today}}">{{today}}</span>
            <a class="lang" href="/lang?to={{other_lang}}" hreflang="{{other_lang}}">{{other_lang_label}}</a>
            {{#user}}
            <span class="user">{{display}} <small>({{role}})</small></span>
            <form method="post" action="/logout" class="inline"><input type="hidden" name="_csrf" value="{{csrf}}"><button type="submit">{{t.logout}}</button></form>
            {{/user}}
          </div>
        </header>
        <main id="main" tabindex="-1">
        {{{content}}}
        </main>
        </body>
        </html>
        """#

    static let login = #"""
        <section class="card narrow">
          <h1>{{t.login}}</h1>
          {{#notice}}<p class="notice" role="status">{{notice}}</p>{{/notice}}
          {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
          <form method="post" action="/login" class="stack">
            <input type="hidden" name="_csrf" value="{{csrf}}">
            <input type="hidden" name="next" value="{{next}}">
            <label for="name">{{t.user_name}}</label>
            <input id="name" name="name" autocomplete="username" autocapitalize="none" required value="{{name}}">
            <label for="password">{{t.password}}</label>
            <input id="password" name="password" type="password" autocomplete="current-password" required>
            <button type="submit">{{t.login}}</button>
          </form>
        </section>
        """#

    static let error = #"""
        <section class="card narrow">
          <h1>{{t.error}} {{status}}</h1>
          <p class="error" role="alert">{{first}}</p>
          <p class="second" lang="{{second_lang}}">{{second}}</p>
          <p><a href="/">{{t.back_home}}</a></p>
        </section>
        """#

    static let home = #"""
        <section class="card">
          <h1>{{t.welcome}} {{display}}</h1>
          <p class="thai-sample" id="thai-sample">{{office}} — {{t.app}}</p>
          <dl class="facts">
            <dt>{{t.node}}</dt><dd>{{office}}{{#code}} ({{t.letter_code}} {{code}}){{/code}}</dd>
            <dt>{{t.node_id}}</dt><dd><code>{{node_id}}</code></dd>
            <dt>{{t.role}}</dt><dd>{{role}}</dd>
            <dt>{{t.store_size}}</dt><dd>{{store_size}}</dd>
          </dl>
        </section>
        <section class="card">
          <h2>{{t.sync}}</h2>
          {{^peers}}<p>{{t.no_peers}}</p>{{/peers}}
          {{#has_peers}}
          <table class="grid">
            <caption class="visually-hidden">{{t.peers}}</caption>
            <thead><tr><th scope="col">{{t.peer}}</th><th scope="col">{{t.last_contact}}</th><th scope="col">{{t.they_lack}}</th><th scope="col">{{t.we_lack}}</th></tr></thead>
            <tbody>
            {{#peers}}<tr><td>{{name}}</td><td>{{contact}}</td><td class="num">{{they_lack}}</td><td class="num">{{we_lack}}</td></tr>{{/peers}}
            </tbody>
          </table>
          {{/has_peers}}
        </section>
        """#
}

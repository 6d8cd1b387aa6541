//! The HTML of the status view and its login page: `maud` templates (compile-time, every
//! interpolation escaped), one inline style sheet, an inline SVG bar chart, no script and no
//! external asset. Everything works without JavaScript: search and filter are a GET form,
//! sorting is links.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::{Category, Check, HostRow, SortKey, StatusView, ViewQuery, age, short_hash, utc};

/// What the page needs besides the view.
#[derive(Debug, Clone, Copy)]
pub struct PageContext<'a> {
    /// The logged-in user.
    pub user: &'a str,
    /// The session's CSRF token (for the logout form).
    pub csrf_token: &'a str,
}

/// What the login page needs.
#[derive(Debug, Clone, Copy)]
pub struct LoginContext<'a> {
    /// The site name (page title).
    pub site: &'a str,
    /// The pre-session's CSRF token.
    pub csrf_token: &'a str,
    /// A message (failed login, expired form).
    pub error: Option<&'a str>,
}

const STYLE: &str = "\
:root{--fg:#1d2733;--muted:#5b6776;--line:#d9dee5;--bg:#f5f7fa;--accent:#15803d}\
*{box-sizing:border-box}\
body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--fg);background:var(--bg)}\
header{display:flex;align-items:center;justify-content:space-between;padding:10px 24px;background:#1d2733;color:#fff}\
header h1{font-size:18px;margin:0;font-weight:600}\
header .who{display:flex;gap:12px;align-items:center;font-size:13px}\
header button{background:transparent;color:#fff;border:1px solid #8b97a6;border-radius:4px;padding:3px 10px;cursor:pointer}\
main{padding:16px 24px;max-width:1500px}\
.panels{display:flex;flex-wrap:wrap;gap:16px;margin-bottom:16px}\
section.panel{background:#fff;border:1px solid var(--line);border-radius:6px;padding:12px 16px;flex:1 1 420px}\
h2{font-size:15px;margin:0 0 8px}\
ul.checks{list-style:none;margin:0;padding:0}\
ul.checks li{display:grid;grid-template-columns:96px 1fr;gap:2px 10px;padding:6px 0;border-top:1px solid var(--line)}\
ul.checks li:first-child{border-top:0}\
.check{font-weight:600;font-size:12px;border-radius:3px;padding:1px 6px;height:fit-content;text-align:center}\
.check-ok{background:#dcfce7;color:#166534}.check-warning{background:#fef3c7;color:#92400e}\
.check-missing{background:#fee2e2;color:#991b1b}.check-unknown{background:#e5e7eb;color:#374151}\
.todo{grid-column:2;color:var(--muted);font-size:13px}\
form.filters{display:flex;flex-wrap:wrap;gap:10px;align-items:end;margin:0 0 10px}\
form.filters label{display:flex;flex-direction:column;font-size:12px;color:var(--muted);gap:2px}\
input,select{font:inherit;padding:4px 6px;border:1px solid #b8c0cc;border-radius:4px;background:#fff}\
button.apply{font:inherit;padding:4px 14px;border:0;border-radius:4px;background:#1d4ed8;color:#fff;cursor:pointer}\
a{color:#1d4ed8}\
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid var(--line)}\
caption{text-align:left;padding:6px 0;color:var(--muted);caption-side:top}\
th,td{padding:6px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}\
thead th{background:#eef1f5;font-size:12px;white-space:nowrap}\
thead th a{color:var(--fg);text-decoration:none}\
thead th[aria-sort] a{color:#1d4ed8}\
tbody th{font-weight:600;word-break:break-all}\
tbody tr:nth-child(even){background:#fafbfc}\
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}\
abbr{text-decoration:none;border-bottom:1px dotted #8b97a6;cursor:help}\
.badge{display:inline-block;font-size:12px;border-radius:10px;padding:1px 8px;white-space:nowrap}\
.s-error{background:#fee2e2;color:#991b1b}.s-never_contacted{background:#e5e7eb;color:#374151}\
.s-not_selected{background:#ede9fe;color:#5b21b6}.s-no_package{background:#fef3c7;color:#92400e}\
.s-pending_download,.s-pending_install{background:#dbeafe;color:#1e40af}.s-up_to_date{background:#dcfce7;color:#166534}\
.muted{color:var(--muted)}.err{color:#991b1b;max-width:28em;word-break:break-word}\
.reason{display:block;font-size:12px;color:var(--muted);max-width:22em}\
.login{max-width:360px;margin:60px auto;background:#fff;border:1px solid var(--line);border-radius:6px;padding:20px 24px}\
.login label{display:flex;flex-direction:column;gap:3px;margin:10px 0;font-size:13px}\
.login .error{background:#fee2e2;color:#991b1b;padding:6px 10px;border-radius:4px}\
";

/// Bar colours per category (chart only; the table uses the state badges).
fn bar_colour(c: Category) -> &'static str {
    match c {
        Category::Registered => "#64748b",
        Category::Selected => "#7c3aed",
        Category::UpToDate => "#16a34a",
        Category::PendingDownload => "#2563eb",
        Category::PendingInstall => "#0891b2",
        Category::Error => "#dc2626",
        Category::NeverContacted => "#9ca3af",
        Category::NoPackage => "#d97706",
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) }
            style { (PreEscaped(STYLE)) }
        }
    }
}

fn link(query: &ViewQuery) -> String {
    let q = query.to_query_string();
    if q.is_empty() {
        "?".into()
    } else {
        format!("?{q}")
    }
}

fn chart(view: &StatusView) -> Markup {
    const ROW: usize = 26;
    const LABEL: usize = 130;
    const BAR: usize = 300;
    let max = Category::ALL
        .iter()
        .map(|c| view.counts.get(*c))
        .max()
        .unwrap_or(0)
        .max(1);
    let height = ROW * Category::ALL.len() + 4;
    let summary: Vec<String> = Category::ALL
        .iter()
        .map(|c| format!("{} {}", c.label(), view.counts.get(*c)))
        .collect();
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(LABEL + BAR + 50) height=(height)
            viewBox={"0 0 " (LABEL + BAR + 50) " " (height)} role="img"
            aria-labelledby="chart-title" {
            title id="chart-title" { "Hosts per category: " (summary.join(", ")) }
            @for (i, c) in Category::ALL.iter().enumerate() {
                @let n = view.counts.get(*c);
                @let y = i * ROW + 2;
                @let w = if n == 0 { 2 } else { (n * BAR).div_ceil(max) };
                a href=(link(&view.query.filtered(Some(*c)))) {
                    text x=(LABEL - 8) y=(y + 16) text-anchor="end" font-size="13" fill="#1d2733" {
                        (c.label())
                    }
                    rect x=(LABEL) y=(y + 3) width=(w) height=(ROW - 8) rx="3"
                        fill=(bar_colour(*c)) {}
                    text x=(LABEL + w + 6) y=(y + 16) font-size="13" font-weight="600" fill="#1d2733" {
                        (n)
                    }
                }
            }
        }
    }
}

fn prerequisites(view: &StatusView) -> Markup {
    html! {
        ul.checks {
            @for p in &view.prerequisites {
                li {
                    @let class = match p.state {
                        Check::Ok => "check check-ok",
                        Check::Warning => "check check-warning",
                        Check::Missing => "check check-missing",
                        Check::Unknown => "check check-unknown",
                    };
                    span class=(class) { (p.state.label()) }
                    span { strong { (p.title) } ": " (p.detail) }
                    @if let Some(a) = &p.action {
                        span.todo { "To do: " (a) }
                    }
                }
            }
        }
    }
}

fn hash_cell(hash: Option<&str>) -> Markup {
    html! {
        @match hash {
            Some(h) => code { abbr title=(h) { (short_hash(h)) } },
            None => span.muted { "—" },
        }
    }
}

fn time_cell(t: Option<u64>, now: u64, never: &str) -> Markup {
    html! {
        @match t {
            Some(t) => span title=(utc(t)) { (age(t, now)) },
            None => span.muted { (never) },
        }
    }
}

fn header_cell(view: &StatusView, key: SortKey) -> Markup {
    let sorted = view.query.sort == key;
    let dir = if view.query.descending {
        "descending"
    } else {
        "ascending"
    };
    html! {
        th scope="col" aria-sort=[sorted.then_some(dir)] {
            a href=(link(&view.query.sorted_by(key))) {
                (key.label())
                @if sorted { (if view.query.descending { " ▼" } else { " ▲" }) }
            }
        }
    }
}

fn row(r: &HostRow, now: u64) -> Markup {
    let s = &r.status;
    let state_class = format!("badge s-{}", r.state.id());
    html! {
        tr data-host=(s.host_name) {
            th scope="row" { (s.host_name) }
            td { span class=(state_class) { (r.state.label()) } }
            td { (time_cell(s.registered_at, now, "not registered")) }
            td { (time_cell(s.last_contact, now, "never")) }
            td { @match &s.platform { Some(p) => (p), None => span.muted { "—" } } }
            td.target { (hash_cell(s.target_hash.as_deref())) }
            td.downloaded { (hash_cell(s.downloaded_aghash.as_deref())) }
            td.installed { (hash_cell(s.installed_aghash.as_deref())) }
            td {
                (r.verdict.label())
                @if let Some(reason) = &r.reason { span.reason { (reason) } }
            }
            td.err { @if let Some(e) = &s.last_error { (e) } }
        }
    }
}

fn host_table(view: &StatusView) -> Markup {
    let now = view.generated_at;
    html! {
        form.filters method="get" action="" role="search" {
            label for="q" {
                "Host name contains"
                input #q type="search" name="q" value=(view.query.search) placeholder="e.g. web";
            }
            label for="state" {
                "State"
                select #state name="state" {
                    option value="" selected[view.query.state.is_none()] { "All hosts" }
                    @for c in Category::ALL {
                        option value=(c.id()) selected[view.query.state == Some(c)] {
                            (c.label()) " (" (view.counts.get(c)) ")"
                        }
                    }
                }
            }
            input type="hidden" name="sort" value=(view.query.sort.id());
            input type="hidden" name="dir" value=(if view.query.descending { "desc" } else { "asc" });
            button.apply type="submit" { "Apply" }
            @if view.query != ViewQuery::default() {
                a href="?" { "Reset" }
            }
        }
        table #hosts {
            caption {
                "Agent update status per host: " (view.hosts.len()) " of " (view.total) " shown"
                @if let Some(c) = view.query.state { ", state " (c.label()) }
                @if !view.query.search.is_empty() { ", host name contains “" (view.query.search) "”" }
                ". Hashes show their first 8 characters; hover for the full hash."
            }
            thead {
                tr { @for key in SortKey::ALL { (header_cell(view, key)) } }
            }
            tbody {
                @for r in &view.hosts { (row(r, now)) }
                @if view.hosts.is_empty() {
                    tr { td colspan=(SortKey::ALL.len()) .muted { "No host matches." } }
                }
            }
        }
    }
}

/// The status page.
pub fn page(view: &StatusView, ctx: &PageContext<'_>) -> String {
    let title = match &view.site {
        Some(s) => format!("Agent update status – {s}"),
        None => "Agent update status".to_owned(),
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(&title))
            body {
                header {
                    h1 { (title) }
                    div.who {
                        span { "Logged in as " strong { (ctx.user) } }
                        form method="post" action="logout.py" {
                            input type="hidden" name="_csrf_token" value=(ctx.csrf_token);
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main {
                    div.panels {
                        section.panel aria-labelledby="stats-h" {
                            h2 #stats-h { "Deployment statistics" }
                            (chart(view))
                            p.muted { "As of " (utc(view.generated_at)) ". Select a bar to list its hosts." }
                        }
                        section.panel aria-labelledby="pre-h" {
                            h2 #pre-h { "Prerequisites" }
                            (prerequisites(view))
                        }
                    }
                    section aria-labelledby="hosts-h" {
                        h2 #hosts-h { "Hosts" }
                        (host_table(view))
                    }
                }
            }
        }
    }
    .into_string()
}

/// The login page: a POST form to `login.py` with the pre-session's CSRF token.
pub fn login_page(ctx: &LoginContext<'_>) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(&format!("Log in – {}", ctx.site)))
            body {
                main.login {
                    h1 { "Agent update status" }
                    p.muted { "Site " (ctx.site) ". Log in with a user with registration rights." }
                    @if let Some(e) = ctx.error {
                        p.error role="alert" #login_error { (e) }
                    }
                    form method="post" action="login.py" {
                        input type="hidden" name="_login" value="1";
                        input type="hidden" name="_csrf_token" value=(ctx.csrf_token);
                        label for="_username" {
                            "User name"
                            input #_username type="text" name="_username" autocomplete="username" required;
                        }
                        label for="_password" {
                            "Password"
                            input #_password type="password" name="_password" autocomplete="current-password" required;
                        }
                        button.apply type="submit" #_login_button { "Log in" }
                    }
                }
            }
        }
    }
    .into_string()
}

"""The report page: one HTML document with its CSS, its SVG charts and one small script inlined.

:func:`render_html` turns :class:`~detector.store.report.ReportData` into the page; nothing
here reads the database.  Every value from the database (domains, technology, category and
cohort names, error kinds) is escaped by :func:`~detector.report.svg.esc` where it is written.
The page's Content-Security-Policy allows no request at all (``default-src 'none'``), inline
styles, ``data:`` images and only the one script whose hash it names: even a value that escaped
escaping could neither load anything nor run.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

from detector.report.svg import Bar, Stack, bar_chart, column_chart, esc, stacked_chart
from detector.store.report import DomainRow, Health, ReportData, Segmentation

#: Colour class and legend text of each cohort-size column.
TIER_STYLE = {"tier 1": "t1", "tier 2": "t2", "tier 3": "t3", "no tier": "none", "stale": "stale"}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

CSS = """
:root{--fg:#1d232a;--muted:#5c6670;--bg:#fff;--card:#f4f6f8;--line:#d5dbe1;--accent:#2f6db5;
--ok:#2e8b57;--err:#c0392b;--t1:#17467d;--t2:#3f7fc4;--t3:#9cc3ea;--none:#b3bcc5;--stale:#e3a21a;
--added:#2e8b57;--removed:#c0392b}
*{box-sizing:border-box}
[hidden]{display:none !important}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
color:var(--fg);background:var(--bg)}
main{max-width:1100px;margin:0 auto;padding:16px}
header h1{margin:0 0 4px;font-size:1.6em}
.meta{color:var(--muted);margin:0}
nav{margin:12px 0 4px;display:flex;flex-wrap:wrap;gap:6px 14px}
nav a{color:var(--accent)}
section{margin-top:28px}
h2{font-size:1.25em;border-bottom:2px solid var(--line);padding-bottom:4px;margin:0 0 12px}
h3{font-size:1.05em;margin:0 0 6px}
.grid{display:grid;gap:16px;grid-template-columns:repeat(auto-fit,minmax(min(100%,420px),1fr))}
figure{margin:0;background:var(--card);border-radius:6px;padding:12px;min-width:0}
figcaption{color:var(--muted);font-size:.9em;margin-top:6px}
svg.chart{display:block;width:100%;height:auto;max-width:560px;overflow:visible}
svg text{font-family:inherit;font-size:14px;fill:var(--fg)}
svg .note{fill:var(--muted);font-size:12px}
svg .value{font-size:13px}
svg .small{font-size:11px}
svg .tick{font-size:11px;fill:var(--muted)}
svg .gridline{stroke:var(--line);stroke-width:1}
svg .axis{stroke:var(--muted);stroke-width:1}
.bar{fill:var(--accent)}
.bar.ok,.key.ok{fill:var(--ok);background:var(--ok)}
.bar.err,.key.err{fill:var(--err);background:var(--err)}
.bar.t1,.key.t1{fill:var(--t1);background:var(--t1)}
.bar.t2,.key.t2{fill:var(--t2);background:var(--t2)}
.bar.t3,.key.t3{fill:var(--t3);background:var(--t3)}
.bar.none,.key.none{fill:var(--none);background:var(--none)}
.bar.stale,.key.stale{fill:var(--stale);background:var(--stale)}
.bar.added,.key.added{fill:var(--added);background:var(--added)}
.bar.removed,.key.removed{fill:var(--removed);background:var(--removed)}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;margin:0 0 8px;padding:0;list-style:none;font-size:.9em}
.key{display:inline-block;width:.9em;height:.9em;border-radius:2px;vertical-align:-.1em;margin-right:4px}
.empty{background:#fff8e1;border-left:4px solid var(--stale);padding:10px 12px;margin:12px 0}
.note-box{color:var(--muted);background:var(--card);padding:10px 12px;border-radius:6px}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em;
background:var(--card);padding:1px 4px;border-radius:3px;overflow-wrap:anywhere}
.stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px;margin:0 0 16px;padding:0}
.stats div{background:var(--card);border-radius:6px;padding:8px 10px}
.stats dt{color:var(--muted);font-size:.85em}
.stats dd{margin:0;font-size:1.3em;font-weight:600}
.search{display:flex;flex-wrap:wrap;align-items:center;gap:6px 12px;margin:0 0 10px}
.search input{font:inherit;padding:6px 10px;border:1px solid var(--line);border-radius:6px;width:min(100%,26em)}
.table-wrap{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{padding:6px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:var(--card);position:sticky;top:0}
td.num,th.num{text-align:right}
td{overflow-wrap:break-word}
td time,td:first-child{white-space:nowrap}
.badge{display:inline-block;padding:0 6px;border-radius:9px;font-size:.85em;white-space:nowrap;color:#fff}
.badge.ok{background:var(--ok)}.badge.err{background:var(--err)}.badge.never{background:var(--none);color:var(--fg)}
.badge.stale{background:var(--stale);color:var(--fg)}
.muted{color:var(--muted)}
footer{margin:32px 0 8px;color:var(--muted);font-size:.85em}
@media (max-width:640px){
 body{font-size:14px} main{padding:10px}
 figure{padding:8px}
 table,thead,tbody,tr,td{display:block;width:100%}
 thead{position:absolute;left:-9999px}
 tr{border:1px solid var(--line);border-radius:6px;margin:0 0 8px;padding:4px 8px}
 td{border:0;padding:2px 0;text-align:left}
 td.num{text-align:left}
 td::before{content:attr(data-label) ": ";color:var(--muted)}
 td:first-child{font-weight:600;white-space:normal}
 td:first-child::before{content:""}
}
@media print{
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
 body{font-size:10.5pt}
 main{max-width:none;padding:0}
 nav,.search,noscript{display:none}
 a{color:inherit;text-decoration:none}
 figure,.stats div,tr{break-inside:avoid}
 h2,h3{break-after:avoid}
 .grid{grid-template-columns:1fr 1fr}
 .table-wrap{overflow:visible}
 th{position:static}
 section{margin-top:18px}
}
"""

#: The table search: filters rows on every word typed (any order, any case), counts what is
#: shown.  It reads the rows' text from the DOM: no data is ever written into the script.
SCRIPT = """
(function () {
  var box = document.getElementById('search');
  var input = document.getElementById('q');
  var shown = document.getElementById('shown');
  if (!box || !input) { return; }
  var rows = Array.prototype.slice.call(document.querySelectorAll('#domains tbody tr'));
  var texts = rows.map(function (r) { return r.textContent.toLowerCase(); });
  function apply() {
    var words = input.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var n = 0;
    rows.forEach(function (row, i) {
      var hit = words.every(function (w) { return texts[i].indexOf(w) !== -1; });
      row.hidden = !hit;
      if (hit) { n += 1; }
    });
    shown.textContent = n.toLocaleString() + ' of ' + rows.length.toLocaleString() + ' shown';
  }
  input.addEventListener('input', apply);
  box.hidden = false;
  apply();
}());
"""


def script_hash(script: str = SCRIPT) -> str:
    """The CSP source that allows exactly this inline script (``'sha256-...'``)."""
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


#: No request of any kind; inline styles, data: images and the one hashed script.
CSP = (f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src {script_hash()}; "
       "base-uri 'none'; form-action 'none'")


def render_html(data: ReportData, *, database: str, version: str = "") -> str:
    """The whole report page for ``data`` read from ``database`` (its path, shown in the page)."""
    title = f"detector report: {database}"
    body = [
        _header(data, database),
        _empty_banner(data, database) if data.domain_total == 0 else "",
        _adoption(data),
        _cohorts(data.segmentations, database),
        _changes(data),
        _health(data.health),
        _domains(data),
        (f'<footer>Made by detector{" " + esc(version) if version else ""} on {esc(_when(data.generated_at))} UTC. '
         "This file is self-contained: it loads nothing from the network.</footer>"),
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n"
        f"<body><main>{''.join(body)}</main><script>{SCRIPT}</script></body></html>\n"
    )


# ---------------------------------------------------------------------------- sections


def _header(data: ReportData, database: str) -> str:
    h = data.health
    run = (f"; latest run: {esc(h.last_run[0])} at {esc(_when(h.last_run[1]))} ({esc(h.last_run[2])})"
           if h.last_run else "")
    return (
        "<header><h1>Technology report</h1>"
        f'<p class="meta">Database <code>{esc(database)}</code>: {data.domain_total:,} domain(s), '
        f"{h.active_detections:,} active detection(s){run}. Generated {esc(_when(data.generated_at))} UTC.</p>"
        '<nav aria-label="Sections"><a href="#adoption">Adoption</a><a href="#cohorts">Cohorts</a>'
        '<a href="#changes">Changes per week</a><a href="#health">Scan health</a>'
        '<a href="#domains">Domains</a></nav></header>'
    )


def _empty_banner(data: ReportData, database: str) -> str:
    return (
        '<p class="empty" id="empty-database"><strong>This database holds no domains yet,</strong> so there is '
        f"nothing to chart. Crawl a domain list into it: <code>detector crawl domains.txt --db {esc(database)}</code>, "
        "then make the report again.</p>"
    )


def _adoption(data: ReportData) -> str:
    if not data.technologies:
        inner = '<p class="note-box">No technology is detected on any domain yet.</p>'
    else:
        techs = [Bar(t.name, t.domains, t.detail) for t in data.technologies]
        cats = [Bar(c.name, c.domains, c.detail) for c in data.categories]
        inner = (
            '<div class="grid">'
            + _figure("fig-technologies", f"Top {len(techs)} technologies",
                      bar_chart(techs, label=f"Top {len(techs)} technologies by domains running them",
                                unit=" domain(s)"),
                      f"Domains running each technology now, its category in grey; {len(techs)} of "
                      f"{data.technology_total:,} active technologies.")
            + _figure("fig-categories", f"Top {len(cats)} categories",
                      bar_chart(cats, label=f"Top {len(cats)} categories by domains", unit=" domain(s)"),
                      "Domains running at least one technology of the category, its leading technologies "
                      f"in grey; {len(cats)} of {data.category_total:,} categories.")
            + "</div>"
        )
    return f'<section id="adoption"><h2>Technology adoption</h2>{inner}</section>'


def _cohorts(segmentations: Sequence[Segmentation] | None, database: str) -> str:
    if segmentations is None:
        inner = (
            '<p class="note-box" id="no-segmentation"><strong>No segmentation has run on this database yet.</strong> '
            f"Segment the accounts into cohorts: <code>detector segment --rules rules.yaml --db {esc(database)}</code>"
            " (see <code>detector segment --help</code>), then make the report again.</p>"
        )
    else:
        inner = "".join(_segmentation(s) for s in segmentations)
    return f'<section id="cohorts"><h2>Cohort sizes by tier</h2>{inner}</section>'


def _segmentation(s: Segmentation) -> str:
    columns = [c for c, _ in s.cohorts[0].counts] if s.cohorts else []
    names = {c: (c if s.has_tiers or c != "no tier" else "members") for c in columns}
    stacks = [Stack(c.name, tuple((TIER_STYLE.get(col, "t3"), n, names[col]) for col, n in c.counts))
              for c in s.cohorts]
    legend = "".join(f'<li><span class="key {TIER_STYLE.get(c, "t3")}"></span>{esc(names[c])}</li>' for c in columns)
    caption = (f"Segmentation “{esc(s.name)}”, run {s.run_id} judged at {esc(_when(s.computed_at))} UTC: "
               f"{s.accounts:,} account(s), {s.tiered:,} tiered. An account counts once in each cohort it is in.")
    if not stacks:
        chart = '<p class="note-box">This run defines no cohorts.</p>'
    else:
        chart = stacked_chart(stacks, label=f"Cohort sizes by tier, segmentation {s.name}")
    return (f'<figure id="fig-cohorts-{esc(_slug(s.name))}" class="cohorts"><h3>{esc(s.name)}</h3>'
            f'<ul class="legend">{legend}</ul>{chart}<figcaption>{caption}</figcaption></figure>')


def _changes(data: ReportData) -> str:
    weeks = data.weeks
    added = sum(w.added for w in weeks)
    removed = sum(w.removed for w in weeks)
    versions = sum(w.version_changed for w in weeks)
    groups = [(_day(w.start), (("added", w.added, "added"), ("removed", w.removed, "removed"))) for w in weeks]
    every = max(1, -(-len(weeks) // 7))
    chart = column_chart(groups, label=f"Technologies added and removed per week, last {len(weeks)} weeks",
                         every=every)
    note = ("" if added or removed else
            f'<p class="note-box">No technology was added to or removed from any domain in the last {len(weeks)} weeks.</p>')
    caption = (f"Weeks start on Monday; the last one is this week. {added:,} added, {removed:,} removed and "
               f"{versions:,} version change(s) in {len(weeks)} weeks (from the <code>changes</code> table; a "
               "domain's first scan adds all it runs).")
    legend = ('<ul class="legend"><li><span class="key added"></span>added</li>'
              '<li><span class="key removed"></span>removed</li></ul>')
    return (f'<section id="changes"><h2>Changes per week</h2>{note}<figure id="fig-changes">{legend}{chart}'
            f"<figcaption>{caption}</figcaption></figure></section>")


def _health(h: Health) -> str:
    if h.domains == 0:
        return '<section id="health"><h2>Scan health</h2><p class="note-box">No domain has been scanned yet.</p></section>'
    scanned = h.ok + h.failing
    stats = [
        ("Domains", f"{h.domains:,}"),
        ("Latest scan ok", f"{h.ok:,} ({_pct(h.ok, scanned)})"),
        ("Latest scan failed", f"{h.failing:,} ({_pct(h.failing, scanned)})"),
        ("Never scanned", f"{h.never_scanned:,}"),
        (f"Stale detections (> {h.stale_after})", f"{h.stale_detections:,} ({_pct(h.stale_detections, h.active_detections)})"),
        ("Newest successful scan", _when(h.newest_ok) if h.newest_ok else "none"),
        ("Oldest successful scan", _when(h.oldest_ok) if h.oldest_ok else "none"),
    ]
    cards = "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in stats)
    outcomes = [Bar("ok", h.ok, css="ok"), *(Bar(kind, n, css="err") for kind, n in h.errors)]
    ages = [Bar(label, n, css="none" if label == "never" else "ok") for label, n in h.ages]
    return (
        f'<section id="health"><h2>Scan health</h2><dl class="stats">{cards}</dl><div class="grid">'
        + _figure("fig-outcomes", "Latest scan outcome",
                  bar_chart(outcomes, label="Domains by the outcome of their latest scan", unit=" domain(s)"),
                  "Each domain once, by its latest scan: ok, or the error kind (see the README's “Error kinds”).")
        + _figure("fig-ages", "Age of the last successful scan",
                  bar_chart(ages, label="Domains by the age of their last successful scan", unit=" domain(s)"),
                  f"{_pct(h.stale_detections, h.active_detections)} of active detections were last seen over "
                  f"{esc(h.stale_after)} ago; <code>detector refresh --older-than 7d</code> re-scans old ones.")
        + "</div></section>"
    )


def _domains(data: ReportData) -> str:
    if not data.domains:
        return '<section id="domains"><h2>Domains</h2><p class="note-box">No domains yet.</p></section>'
    shown = len(data.domains)
    more = (f'<p class="note-box" id="truncated">The table lists the first {shown:,} of {data.domain_total:,} domains '
            "by name; give <code>--rows</code> to list more.</p>" if shown < data.domain_total else "")
    head = "".join(f'<th scope="col"{_NUM if num else ""}>{name}</th>' for name, num in _COLUMNS)
    body = "".join(_domain_row(r) for r in data.domains)
    return (
        f'<section id="domains"><h2>Domains</h2>{more}'
        '<div class="search" id="search" hidden><label for="q">Search</label>'
        '<input id="q" type="search" autocomplete="off" placeholder="domain, technology, cohort, status…">'
        '<span id="shown" class="muted" aria-live="polite"></span></div>'
        '<noscript><p class="muted">Scripts are off: use the browser’s find (Ctrl-F) to search the table.</p></noscript>'
        f'<div class="table-wrap"><table id="domains"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
        "</section>"
    )


_NUM = ' class="num"'
_COLUMNS = (("Domain", False), ("Status", False), ("Last scan", False), ("Technologies", True),
            ("Top technologies", False), ("Cohorts", False), ("Tier", True))


def _domain_row(r: DomainRow) -> str:
    if r.status == "ok":
        status = '<span class="badge ok">ok</span>'
    elif r.status == "error":
        status = f'<span class="badge err">error: {esc(r.error_kind or "other")}</span>'
    else:
        status = '<span class="badge never">never scanned</span>'
    if r.stale and r.last_ok_at:
        status += f' <span class="badge stale" title="last successful scan {esc(r.last_ok_at)}">stale</span>'
    techs = ", ".join(esc(f"{name} {version}" if version else name) for name, version in r.technologies)
    if r.technology_count > len(r.technologies):
        techs += f' <span class="muted">+{r.technology_count - len(r.technologies):,} more</span>'
    cohorts = ", ".join(
        esc(cohort if segmentation == "default" else f"{segmentation}: {cohort}") + (" (stale)" if stale else "")
        for segmentation, cohort, stale in r.cohorts
    )
    scanned = (f'<time datetime="{esc(r.last_scanned_at)}">{esc(_when(r.last_scanned_at))}</time>'
               if r.last_scanned_at else '<span class="muted">never</span>')
    cells = (esc(r.domain), status, scanned, f"{r.technology_count:,}", techs, cohorts,
             str(r.tier) if r.tier is not None else "")
    return "<tr>" + "".join(
        f'<td data-label="{name}"{_NUM if num else ""}>{cell}</td>'
        for (name, num), cell in zip(_COLUMNS, cells)
    ) + "</tr>"


# ---------------------------------------------------------------------------- helpers


def _figure(fig_id: str, heading: str, chart: str, caption: str) -> str:
    return f'<figure id="{fig_id}"><h3>{esc(heading)}</h3>{chart}<figcaption>{caption}</figcaption></figure>'


def _when(stamp: str) -> str:
    """A stored time for people: ``2026-12-03 11:34``.

    >>> _when("2026-12-03T11:34:51Z")
    '2026-12-03 11:34'
    """
    return stamp[:16].replace("T", " ")


def _day(iso_date: str) -> str:
    """An ISO date as an axis label: ``30 Nov``.

    >>> _day("2026-11-30")
    '30 Nov'
    """
    return f"{int(iso_date[8:10])} {MONTHS[int(iso_date[5:7]) - 1]}"


def _pct(part: int, whole: int) -> str:
    """A share in whole percent (``0%`` of nothing).

    >>> _pct(1, 3), _pct(0, 0)
    ('33%', '0%')
    """
    return f"{100 * part / whole:.0f}%" if whole else "0%"


def _slug(name: str) -> str:
    """An id-safe form of a segmentation name.

    >>> _slug("Q3 review/EU")
    'q3-review-eu'
    """
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-") or "default"

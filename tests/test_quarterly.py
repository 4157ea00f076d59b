"""README's quarterly review, run as written: three quarterly crawls of local sites (one adopts
a tool, one drops one, one upgrades), `segment` after each, `segment diff`, the export.

The accounts, the rules, the commands and the printed outputs are read from README.md; the
sites change between quarters here; the crawls go through the local proxy (nothing leaves
127.0.0.1) with the clock set by DETECTOR_NOW, as the README says.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from detector.cli.main import cli
from detector.demo.vhosts import Route, Site
from tests.servers import ROOT, run_detector, start_proxy

README = ROOT / "README.md"
SECTION = "### Quarterly review: who moved since last quarter"
EXPORT_COLUMNS = ("domain", "primary_cohort", "cohorts", "tier", "score_breakdown")


def page(*parts: str) -> Route:
    """A home page whose head holds the given tags."""
    head = "\n".join(parts)
    return Route(body=f"<!doctype html><html><head><title>Shop</title>\n{head}\n</head><body><h1>Hi</h1></body></html>".encode())


SHOPIFY = '<script src="https://cdn.shopify.com/s/files/1/0612/t/12/assets/global.js"></script>'
KLAVIYO = '<script src="https://static.klaviyo.com/onsite/js/klaviyo.js?company_id=AbC123"></script>'
MAILCHIMP = (
    '<script id="mcjs">!function(c,h,i,m,p){m=c.createElement(h),p=c.getElementsByTagName(h)[0],'
    'm.async=1,m.src=i,p.parentNode.insertBefore(m,p)}(document,"script",'
    '"https://chimpstatic.com/mcjs-connected/js/users/abc/def.js");</script>'
)


def woocommerce(version: str) -> str:
    return f'<meta name="generator" content="WordPress 6.4.2" />\n<meta name="generator" content="WooCommerce {version}" />'


#: What each site serves in May, August and November.
QUARTERS: dict[str, tuple[Route, Route, Route]] = {
    "alpine-gear.test": (page(SHOPIFY, KLAVIYO),) * 3,
    "birch-home.test": (page(SHOPIFY), page(SHOPIFY, KLAVIYO), page(SHOPIFY, KLAVIYO)),
    "cedar-crafts.test": (page(SHOPIFY, MAILCHIMP), page(SHOPIFY), page(SHOPIFY)),
    "dune-pottery.test": (page(woocommerce("8.4.0")), page(woocommerce("8.4.0")), page(woocommerce("9.1.0"))),
    "ember-blog.test": (page('<meta name="generator" content="WordPress 6.4.2" />'),) * 3,
}


def walkthrough() -> tuple[str, str, list[list[str]], dict[str, str]]:
    """The section's accounts CSV, rules, shell blocks and the outputs it shows (by placeholder order)."""
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.index("\n### ", start + len(SECTION))
    blocks = re.findall(r"```(\w*)\n(.*?)```", text[start:end], flags=re.DOTALL)
    accounts = next(body for lang, body in blocks if lang == "csv")
    rules = next(body for lang, body in blocks if lang == "yaml")
    shells = [body.splitlines() for lang, body in blocks if lang == "sh"]
    outputs = [body for lang, body in blocks if lang == "text"]
    names = ("funnel_q2", "diff_q3", "diff_q4", "export_q4")
    assert len(outputs) == len(names)
    return accounts, rules, shells, dict(zip(names, outputs))


def run_block(lines: list[str], cwd: Path, proxy_url: str, monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], str]]:
    """Run one shell block as written; return each detector command with its stdout."""
    out = []
    for line in lines:
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] == "export":
            name, value = words[1].split("=", 1)
            monkeypatch.setenv(name, value)
            continue
        assert words[0] == "detector", line
        args, target = words[1:], None
        if ">" in args:
            args, target = args[: args.index(">")], args[args.index(">") + 1]
        if args[0] == "crawl":
            # A full crawl runs the reactor: in a subprocess, through the local proxy.
            args += ["--proxy", proxy_url, "--no-dns", "--workers", "0", "--timeout", "5", "--retries", "0"]
            run = run_detector(args, cwd=cwd)
            assert run.code == 0, f"{line}: {run.err}"
            stdout = run.out
        else:
            with monkeypatch.context() as m:
                m.chdir(cwd)
                result = CliRunner().invoke(cli, args)
            assert result.exit_code == 0, f"{line}: {result.output}"
            stdout = result.stdout
        if target:
            (cwd / target).write_text(stdout, encoding="utf-8")
        out.append((args, stdout))
    return out


def funnel(segment_out: str) -> str:
    """The funnel table of `segment`'s output."""
    return next(part for part in segment_out.split("\n\n") if part.startswith("funnel")).rstrip("\n") + "\n"


def export_view(path: Path) -> str:
    """The export's columns the README shows, as CSV."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    writer.writerows([r[c] for c in EXPORT_COLUMNS] for r in rows)
    return out.getvalue()


def test_readme_quarterly_review(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    accounts, rules, shells, shown = walkthrough()
    (tmp_path / "accounts.csv").write_text(accounts, encoding="utf-8")
    (tmp_path / "quarterly.yaml").write_text(rules, encoding="utf-8")
    sites = {host: Site(host, routes={"/": routes[0]}) for host, routes in QUARTERS.items()}
    proxy = start_proxy(sites)
    results = []
    try:
        for quarter, block in enumerate(shells):
            for host, routes in QUARTERS.items():
                sites[host].routes["/"] = routes[quarter]
            results.append(run_block(block, tmp_path, proxy.url, monkeypatch))
    finally:
        proxy.stop()
    may, august, november = results

    # May: the funnel from the whole list to tiered accounts.
    segment_may = next(out for args, out in may if args[0] == "segment")
    assert funnel(segment_may) == shown["funnel_q2"]

    # August and November: who moved, as the README shows it.
    diff_aug = next(out for args, out in august if args[:2] == ["segment", "diff"])
    assert diff_aug == shown["diff_q3"]
    diffs_nov = [out for args, out in november if args[:2] == ["segment", "diff"]]
    assert diffs_nov[0] == shown["diff_q4"]

    # Timing conditions, in the August run's reasons (dates named).
    assert "runs Klaviyo, first seen 2026-08-15 (not there at the first scan, 2026-05-15)" in diff_aug
    assert "dropped MailChimp: last seen 2026-05-15, gone since 2026-08-15" in diff_aug
    assert "alpine-gear.test" not in diff_aug  # Klaviyo since its first scan: not "just switched"

    # The export: every account, a primary cohort and a score breakdown for each.
    assert export_view(tmp_path / "crm.csv") == shown["export_q4"]
    with (tmp_path / "crm.csv").open(newline="", encoding="utf-8") as fh:
        rows = {r["domain"]: r for r in csv.DictReader(fh)}
    assert sorted(rows) == sorted([*QUARTERS, "gone-shop.test"])
    assert rows["ember-blog.test"]["primary_cohort"] == "out-of-market"
    assert rows["gone-shop.test"]["primary_cohort"] == "unknown"
    assert rows["birch-home.test"]["first_seen"] == "Klaviyo: 2026-08-15"
    assert rows["birch-home.test"]["segmented_at"] == "2026-11-15T09:00:00Z"

    # --since a date compares with May's run: everything that moved over the two quarters.
    since_may = list(csv.DictReader(io.StringIO((tmp_path / "since-may.csv").read_text())))
    moved = {(r["domain"], r["change"], r["cohort"]) for r in since_may}
    assert ("cedar-crafts.test", "entered", "churned") in moved
    assert ("dune-pottery.test", "left", "upgrading") in moved
    assert ("birch-home.test", "entered", "displacement") in moved
    assert ("birch-home.test", "entered", "just-switched") not in moved  # in and out again

    # The runs are kept, each with its counts.
    listing = CliRunner().invoke(cli, ["segment", "runs", "--db", str(tmp_path / "quarterly.db"), "--json"])
    kept = json.loads(listing.stdout)
    assert [(r["run"], r["computed_at"], r["accounts"], r["in_market"]) for r in kept] == [
        (1, "2026-05-15T09:00:00Z", 6, 5),
        (2, "2026-08-15T09:00:00Z", 6, 5),
        (3, "2026-11-15T09:00:00Z", 6, 5),
    ]

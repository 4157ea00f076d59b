"""README's walk-through, run as written: accounts import -> crawl -> segment -> CSV export.

The account list, the commands and the printed table are read from README.md; the crawl goes
through the local virtual-host proxy serving the demo sites (nothing leaves 127.0.0.1).
"""

from __future__ import annotations

import csv
import json
import re
import shlex
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from detector.demo import demo_sites
from tests.servers import ROOT, run_detector, start_proxy

README = ROOT / "README.md"


def walkthrough() -> tuple[str, list[list[str]], str]:
    """The account CSV, the commands and the printed table of README's walk-through."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Walk-through: from crawl to CSV export") :]
    blocks = re.findall(r"```(\w*)\n(.*?)```", section, flags=re.DOTALL)
    accounts_csv = next(body for lang, body in blocks if lang == "csv")
    shell = next(body for lang, body in blocks if lang == "sh")
    commands = [shlex.split(line, comments=True) for line in shell.splitlines() if line.strip()]
    table = next(body for lang, body in blocks if lang == "text")
    return accounts_csv, commands, table


def test_readme_walkthrough_from_crawl_to_csv_export(tmp_path: Path) -> None:
    accounts_csv, commands, table = walkthrough()
    assert [c[:2] for c in commands] == [
        ["detector", "accounts"],
        ["detector", "crawl"],
        ["detector", "segment"],
    ]
    (tmp_path / "accounts.csv").write_text(accounts_csv, encoding="utf-8")
    (tmp_path / "examples").mkdir()
    shutil.copy(ROOT / "examples" / "rules.yaml", tmp_path / "examples" / "rules.yaml")
    proxy = start_proxy(demo_sites())
    try:
        runs = []
        for command in commands:
            args = command[1:]
            if args[0] == "crawl":
                args += ["--proxy", proxy.url, "--no-dns", "--workers", "0", "--timeout", "5", "--retries", "0"]
            run = run_detector(args, cwd=tmp_path)
            assert run.code == 0, f"{command}: {run.err}"
            runs.append(run)
    finally:
        proxy.stop()

    assert runs[0].out == "imported 5 accounts from accounts.csv (5 new, 0 updated)\n"
    assert runs[2].out == table
    assert 'warning: 1 account never scanned successfully: in "unknown"' in runs[2].err
    assert "exported 5 accounts to cohorts.csv" in runs[2].err

    with (tmp_path / "cohorts.csv").open(newline="", encoding="utf-8") as fh:
        rows = {r["domain"]: r for r in csv.DictReader(fh)}
    assert sorted(rows) == [
        "acme-outdoor.test",
        "cloudly.test",
        "gone-bankrupt.test",
        "northwind-blog.test",
        "woo-pottery.test",
    ]
    acme = rows["acme-outdoor.test"]
    assert (acme["company"], acme["owner"], acme["employees"]) == ("Acme Outdoor", "ana", "120")
    assert acme["cohorts"] == "integration;displacement;maturity-basic"
    assert acme["tier"] == "1"
    assert re.search(
        r"integration: runs Shopify, last seen \d{4}-\d\d-\d\d \| displacement: runs Klaviyo",
        acme["reasons"],
    )
    assert acme["technologies"].split(";")[:2] == ["Shopify", "Klaviyo"]
    assert (
        rows["woo-pottery.test"]["cohorts"] == "integration;whitespace;growing-shops;maturity-basic"
    )
    assert rows["northwind-blog.test"]["cohorts"] == "complement;whitespace;maturity-basic"
    # Cloudly installs HubSpot's standard embed code (js.hs-scripts.com): it runs marketing automation
    assert rows["cloudly.test"]["cohorts"] == "maturity-advanced"
    # The same database half a year later: every membership is flagged stale, none scores.
    later = (datetime.now(timezone.utc) + timedelta(days=200)).strftime("%Y-%m-%d")
    args = ["segment", "--rules", "examples/rules.yaml", "--db", "detector.db", "--as-of", later]
    stale = run_detector([*args, "--json"], cwd=tmp_path)
    assert stale.code == 0, stale.err
    sizes = {row["cohort"]: row for row in json.loads(stale.out)["sizes"]}
    assert all(row["stale"] == row["total"] for name, row in sizes.items() if name != "unknown")
    assert sizes["integration"]["total"] == 2
    assert "warning: 4 accounts last scanned successfully more than 90 days ago" in stale.err
    gone = rows["gone-bankrupt.test"]
    assert (gone["cohorts"], gone["tier"]) == ("unknown", "")
    assert gone["reasons"] == (
        "unknown: never scanned successfully (last scan failed: dns); not counted as whitespace"
    )


@pytest.mark.parametrize("command", ["accounts import", "segment"])
def test_readme_documents_the_command(command: str) -> None:
    assert f"detector {command} " in README.read_text(encoding="utf-8")


def test_readme_python_example_prints_what_it_says(capsys: pytest.CaptureFixture[str]) -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("From Python, segmentation works on plain records") :]
    code = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert code is not None
    expected = [line[2:] for line in code.group(1).splitlines() if line.startswith("# ")]
    exec(compile(code.group(1), "README.md", "exec"), {})  # noqa: S102 - our own README
    assert capsys.readouterr().out.splitlines() == expected

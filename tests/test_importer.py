"""Wappalyzer-format data -> YAML -> back, losslessly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from detector.cli.main import cli
from detector.engine.importer import export_wappalyzer, import_wappalyzer, read_wappalyzer
from detector.engine.signatures import load_signatures
from detector.errors import SignatureError
from tests.conftest import WAPPALYZER_DATA

MINI = Path(__file__).resolve().parent / "data" / "wappalyzer-mini"


def _round_trip(src: Path, dest: Path) -> None:
    technologies, categories, groups = read_wappalyzer(src)
    import_wappalyzer(src, dest, provenance="test")
    lib = load_signatures([dest])
    t2, c2, g2 = export_wappalyzer(lib)
    assert t2 == technologies
    assert c2 == categories
    assert g2 == groups


def test_round_trip_mini(tmp_path: Path) -> None:
    _round_trip(MINI, tmp_path / "out")
    text = (tmp_path / "out" / "cms" / "acmecms.yaml").read_text()
    assert "categories:\n- CMS" in text and "provenance: test" in text


def test_round_trip_shipped_data(tmp_path: Path) -> None:
    if not WAPPALYZER_DATA.exists():
        pytest.skip("../shared/data is not available")
    _round_trip(WAPPALYZER_DATA, tmp_path / "out")
    assert (tmp_path / "out" / "LICENSE.wappalyzer").exists()


def test_shipped_library_matches_its_source() -> None:
    """signatures/ is the import of the MIT data, plus our examples."""
    if not WAPPALYZER_DATA.exists():
        pytest.skip("../shared/data is not available")
    technologies, categories, _ = read_wappalyzer(WAPPALYZER_DATA)
    t2, c2, _ = export_wappalyzer(load_signatures(None, layers=False))  # the imported data alone
    assert t2 == technologies and c2 == categories


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    import_wappalyzer(MINI, tmp_path)
    with pytest.raises(SignatureError, match="--force"):
        import_wappalyzer(MINI, tmp_path)
    assert import_wappalyzer(MINI, tmp_path, force=True) == 3


def test_reimport_keeps_our_layer(tmp_path: Path) -> None:
    import_wappalyzer(MINI, tmp_path)
    ours = tmp_path / "detector" / "ours.yaml"
    ours.parent.mkdir()
    ours.write_text("name: Ours\ncategories: [CMS]\nhtml: ours\nprovenance: 'detector: test'\n")
    import_wappalyzer(MINI, tmp_path, force=True)
    assert ours.exists() and "Ours" in load_signatures(tmp_path).signatures


def test_bad_source_directory(tmp_path: Path) -> None:
    with pytest.raises(SignatureError, match="no technologies.json"):
        import_wappalyzer(tmp_path, tmp_path / "out")
    (tmp_path / "technologies.json").write_text("{bad json")
    with pytest.raises(SignatureError, match="invalid JSON"):
        import_wappalyzer(tmp_path, tmp_path / "out")


def test_cli_import_then_load_with_bundled(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "mine"
    res = runner.invoke(cli, ["signatures", "import-wappalyzer", str(MINI), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "wrote 3 technologies" in res.output
    html = tmp_path / "p.html"
    html.write_text('<meta name="generator" content="AcmeCMS 2.1"><script src="/acme-shop.js"></script>')
    res = runner.invoke(cli, ["detect", "--signatures", str(out), "--html", str(html), "--json"])
    assert res.exit_code == 0, res.output
    names = {t["name"]: t for t in json.loads(res.output)[0]["technologies"]}
    assert names["AcmeCMS"]["version"] == "2.1"
    assert "AcmeShop" in names  # its requirement (AcmeCMS) was met
    # excludes apply before implies (as in the reference engine): PHP, implied by AcmeCMS, stays
    assert names["PHP"]["implied_by"] == ["AcmeCMS"] and names["PHP"]["confidence"] == 50

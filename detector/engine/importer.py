"""Wappalyzer-format data -> signatures/*.yaml, and back (for the lossless round trip)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from detector.engine.signatures import INFO_KEYS, RULE_KINDS, Library, library_files, slugify
from detector.errors import SignatureError

try:
    _Dumper: type = yaml.CSafeDumper
except AttributeError:  # pragma: no cover
    _Dumper = yaml.SafeDumper

#: Order of fields in a generated file: identity, description, relations, rules, provenance.
FIELD_ORDER = ("name", "categories") + INFO_KEYS + ("implies", "requires", "requiresCategory", "excludes") + RULE_KINDS


def read_wappalyzer(src: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Read technologies, categories and groups from a Wappalyzer-format directory.

    Technologies come from ``technologies.json`` or ``technologies/*.json`` (``_.json``,
    ``a.json``...), as in the upstream repository.
    """
    src = Path(src)
    technologies: dict[str, Any] = {}
    single = src / "technologies.json"
    parts = sorted((src / "technologies").glob("*.json")) if (src / "technologies").is_dir() else []
    if single.exists():
        technologies.update(_read_json(single))
    for part in parts:
        technologies.update(_read_json(part))
    if not technologies:
        raise SignatureError(
            f"{src}: no technologies.json or technologies/*.json found; "
            "point to a Wappalyzer-format data directory (its src/ folder)"
        )
    cats_path = src / "categories.json"
    if not cats_path.exists():
        raise SignatureError(f"{src}: categories.json is missing; it is needed to name the categories")
    categories = _read_json(cats_path)
    groups = _read_json(src / "groups.json") if (src / "groups.json").exists() else {}
    return technologies, categories, groups


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SignatureError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise SignatureError(f"{path}: expected a JSON object")
    return data


def to_yaml_documents(
    technologies: Mapping[str, Any], categories: Mapping[str, Any], groups: Mapping[str, Any], provenance: str
) -> tuple[dict[str, dict[str, Any]], dict[int, Any], dict[int, Any]]:
    """Convert Wappalyzer objects to our YAML shapes: {relative path: document}, categories, groups."""
    group_names = {int(k): v["name"] if isinstance(v, dict) else str(v) for k, v in groups.items()}
    cat_names = {int(k): v["name"] for k, v in categories.items()}
    cats_doc: dict[int, Any] = {}
    for key, value in categories.items():
        entry = dict(value)
        if "groups" in entry:
            entry["groups"] = [group_names.get(int(g), g) for g in entry["groups"]]
        cats_doc[int(key)] = entry
    docs: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for name, tech in technologies.items():
        doc: dict[str, Any] = {"name": name}
        for key in FIELD_ORDER[1:]:
            if key == "categories":
                if "cats" in tech:
                    doc["categories"] = [cat_names.get(int(c), c) for c in tech["cats"]]
            elif key == "requiresCategory":
                if key in tech:
                    value = tech[key]
                    conv = [cat_names.get(int(c), c) for c in (value if isinstance(value, list) else [value])]
                    doc[key] = conv if isinstance(value, list) else conv[0]
            elif key in tech:
                doc[key] = tech[key]
        unknown = set(tech) - set(FIELD_ORDER) - {"cats"}
        for key in sorted(unknown):
            doc.setdefault("x-" + key, tech[key])
        doc["provenance"] = provenance
        first = doc.get("categories", ["uncategorised"])[0]
        folder = slugify(str(first))
        rel = f"{folder}/{slugify(name)}.yaml"
        n = 2
        while rel.lower() in used:
            rel = f"{folder}/{slugify(name)}-{n}.yaml"
            n += 1
        used.add(rel.lower())
        docs[rel] = doc
    return docs, cats_doc, dict(groups_to_doc(groups))


def groups_to_doc(groups: Mapping[str, Any]) -> dict[int, Any]:
    """groups.json -> the groups.yaml mapping (id -> {name})."""
    return {int(k): (dict(v) if isinstance(v, dict) else {"name": v}) for k, v in groups.items()}


def dump_yaml(doc: Any) -> str:
    """YAML text the way the library stores it: block style, unicode, no line folding."""
    return str(yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=10_000))


def import_wappalyzer(src: Path, dest: Path, *, provenance: str | None = None, force: bool = False) -> int:
    """Write the YAML library for a Wappalyzer-format directory; returns the technology count."""
    src, dest = Path(src), Path(dest)
    technologies, categories, groups = read_wappalyzer(src)
    kept_examples: dict[str, Any] = {}
    if dest.exists() and any(dest.rglob("*.yaml")):
        if not force:
            raise SignatureError(f"{dest}: already holds signatures; pass --force to replace them")
        for old in library_files(dest)[0]:  # never the detector/ layer of our own rules
            # Our own examples are kept across re-imports (they are not in the source data).
            doc = yaml.load(old.read_bytes(), Loader=yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader)
            if isinstance(doc, dict) and doc.get("examples") and "name" in doc:
                kept_examples[str(doc["name"])] = doc["examples"]
            old.unlink()
    prov = provenance or f"imported from Wappalyzer-format data in {src.name}/"
    docs, cats_doc, groups_doc = to_yaml_documents(technologies, categories, groups, prov)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "categories.yaml").write_text(dump_yaml(cats_doc), encoding="utf-8")
    (dest / "groups.yaml").write_text(dump_yaml(groups_doc), encoding="utf-8")
    for rel, doc in docs.items():
        if doc["name"] in kept_examples:
            doc["examples"] = kept_examples[doc["name"]]
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump_yaml(doc), encoding="utf-8")
    for notice in ("LICENSE", "NOTICE"):
        if (src / notice).exists():
            shutil.copyfile(src / notice, dest / f"{notice}.wappalyzer")
    return len(docs)


def export_wappalyzer(library: Library) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The library as Wappalyzer objects (technologies, categories, groups)."""
    cat_ids = {c.name: c.id for c in library.categories.values()}
    group_ids = {name: gid for gid, name in library.groups.items()}
    technologies: dict[str, Any] = {}
    for name, sig in library.signatures.items():
        raw = sig.raw
        tech: dict[str, Any] = {}
        for key, value in raw.items():
            if key in ("name", "provenance", "examples"):
                continue
            if key == "categories":
                tech["cats"] = [cat_ids.get(c, c) for c in value]
            elif key == "requiresCategory":
                conv = [cat_ids.get(c, c) for c in (value if isinstance(value, list) else [value])]
                tech[key] = conv if isinstance(value, list) else conv[0]
            elif key.startswith("x-"):
                tech[key[2:]] = value
            else:
                tech[key] = value
        technologies[name] = tech
    categories = {
        str(c.id): {"groups": [group_ids.get(g, g) for g in c.groups], "name": c.name, "priority": c.priority}
        for c in library.categories.values()
    }
    groups = {str(gid): {"name": name} for gid, name in library.groups.items()}
    return technologies, categories, groups

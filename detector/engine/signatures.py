"""YAML signature files -> validated Signature objects.

A library is one or more directories.  Each holds ``categories.yaml`` (and ``groups.yaml``)
plus one YAML file per technology, in folders by category; see ``signatures/README.md``.
Later directories override earlier ones: technologies by name, categories by id.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from detector.bundled import signatures_directory
from detector.errors import SignatureError

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _Loader = yaml.SafeLoader

#: Rule kinds whose value is a pattern or a list of patterns.
LIST_KINDS = ("url", "html", "text", "css", "scriptSrc", "scripts", "xhr", "robots", "certIssuer")
#: Rule kinds keyed by a name (header, cookie, meta name, JS property, DNS record type, path).
KEYED_KINDS = ("headers", "cookies", "meta", "js", "dns", "probe")
#: Rule kinds a static page (URL, headers, HTML) can show.
STATIC_KINDS = ("url", "html", "text", "css", "scriptSrc", "scripts", "headers", "cookies", "meta", "dom")
#: Rule kinds that need a browser or the network: loaded and counted, never faked.
BROWSER_KINDS = ("js", "xhr")
NETWORK_KINDS = ("dns", "certIssuer", "robots", "probe")
RULE_KINDS = LIST_KINDS + KEYED_KINDS + ("dom",)
RELATION_KEYS = ("implies", "requires", "requiresCategory", "excludes")
INFO_KEYS = ("description", "website", "icon", "cpe", "saas", "oss", "pricing")
OWN_KEYS = ("name", "categories", "provenance", "examples")
ALL_KEYS = OWN_KEYS + INFO_KEYS + RELATION_KEYS + RULE_KINDS
PRICING = ("low", "mid", "high", "freemium", "onetime", "recurring", "poa", "payg")
DOM_KEYS = ("exists", "text", "attributes", "properties", "src")
#: Bounds on what a library may hold, so a user library cannot exhaust memory: the largest
#: bundled file is a few KB and the longest bundled pattern about 1,100 characters.
MAX_FILE_BYTES = 1 << 20
#: An alias (``*name``) where YAML allows one: after a space, a flow indicator or a key.
_ALIAS = re.compile(rb"(?:^|[\s\[{,:])\*[^\s,\[\]{}]", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Category:
    """A technology category (CMS, Analytics...) with its priority and broad groups."""

    id: int
    name: str
    priority: int
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Signature:
    """One technology as its YAML file says it (raw patterns, not compiled)."""

    name: str
    categories: tuple[str, ...]
    rules: Mapping[str, Any]
    info: Mapping[str, Any]
    implies: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    requires_category: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    provenance: str = ""
    examples: tuple[Mapping[str, Any], ...] = ()
    path: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)
    #: The file of the imported definition this one replaces (rules in a ``detector/`` layer).
    overrides: str = ""
    #: Whether the definition comes from a directory's ``detector/`` layer (our own rules).
    layer: bool = False


@dataclass(frozen=True, slots=True)
class Library:
    """Signatures by name, categories by id and groups by id, from one or more directories."""

    signatures: Mapping[str, Signature]
    categories: Mapping[int, Category]
    groups: Mapping[int, str]
    directories: tuple[str, ...] = ()
    version: str = ""

    def category_by_name(self, name: str) -> Category | None:
        """The category called ``name`` (case-insensitive), if any."""
        low = name.lower()
        for cat in self.categories.values():
            if cat.name.lower() == low:
                return cat
        return None


#: The folder, inside a library directory, of our own rules: loaded after the imported data,
#: replacing imported technologies of the same name; left out by ``--compat wappalyzer``.
LAYER = "detector"


def default_directory() -> Path:
    """The shipped signature library: $DETECTOR_SIGNATURES, else the packaged data (a wheel),
    else the checkout's ``signatures/`` beside the package (see :mod:`detector.bundled`)."""
    env = os.environ.get("DETECTOR_SIGNATURES")
    if env:
        return Path(env)
    found = signatures_directory()
    if found is not None:
        return found
    raise SignatureError(
        "the bundled signature library was not found (this installation of detector lacks its data); "
        "reinstall detector, or pass --signatures DIR or set DETECTOR_SIGNATURES"
    )


def as_list(value: Any) -> list[Any]:
    """A rule value as a list: a string becomes a one-item list.

    >>> as_list("a"), as_list(["a", "b"]), as_list(None)
    (['a'], ['a', 'b'], [])
    """
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def relation_name(entry: str) -> str:
    """The technology name of an ``implies`` entry, without its ``\\;`` tags.

    >>> relation_name("PHP\\\\;confidence:50")
    'PHP'
    """
    return str(entry).split("\\;")[0]


def load_signatures(
    directories: Sequence[Path | str] | Path | str | None = None, *, layers: bool = True
) -> Library:
    """Load and validate the YAML library from one or more directories.

    ``layers=False`` leaves out each directory's ``detector/`` layer (see :data:`LAYER`), which
    is how ``--compat wappalyzer`` runs the imported data alone.
    Raises SignatureError listing every problem (file, technology, field, fix).
    """
    library, problems = collect_library(directories, layers=layers)
    if problems:
        raise SignatureError(_join_problems(problems))
    return library


def collect_library(
    directories: Sequence[Path | str] | Path | str | None = None, *, layers: bool = True
) -> tuple[Library, list[str]]:
    """Load what can be loaded and list every problem instead of raising (for ``check``).

    Within a directory, names are unique, except that a definition in its ``detector/`` layer
    replaces the imported one of the same name.  A later directory replaces earlier ones.
    """
    dirs = resolve_directories(directories)
    signatures: dict[str, Signature] = {}
    categories: dict[int, Category] = {}
    groups: dict[int, str] = {}
    problems: list[str] = []
    for d in dirs:
        if not d.is_dir():
            raise SignatureError(f"{d}: not a directory of signatures")
        groups.update(_load_groups(d, problems))
        categories.update(_load_categories(d, groups, problems))
        base, layer = library_files(d, layers=layers)
        imported: dict[str, str] = {}
        for path in base:
            for sig in _load_file(path, path.read_bytes(), problems):
                _add_unique(sig, imported, problems)
                signatures[sig.name] = sig
        ours: dict[str, str] = {}
        for path in layer:
            for sig in _load_file(path, path.read_bytes(), problems):
                _add_unique(sig, ours, problems)
                sig = replace(sig, layer=True, overrides=imported.get(sig.name, ""))
                signatures[sig.name] = sig
    if not categories:
        problems.append(f"{dirs[0]}: no categories.yaml found; a library needs its categories")
    library = Library(
        signatures, categories, groups, tuple(str(d) for d in dirs), library_digest(dirs, layers=layers)
    )
    problems += validate_library(library)
    return library, problems


def _add_unique(sig: Signature, seen: dict[str, str], problems: list[str]) -> None:
    if sig.name in seen:
        problems.append(
            f'{sig.path}: "{sig.name}" is also defined in {seen[sig.name]}; '
            "names must be unique within a directory (and within its detector/ layer): rename or merge one"
        )
    seen[sig.name] = sig.path


def library_files(directory: Path, *, layers: bool = True) -> tuple[list[Path], list[Path]]:
    """The technology files of a directory: the imported ones, then those of its layer.

    >>> library_files(Path("/nonexistent"))
    ([], [])
    """
    layer_dir = directory / LAYER
    base: list[Path] = []
    layer: list[Path] = []
    for path in sorted(directory.rglob("*.y*ml")):
        if path.name in ("categories.yaml", "groups.yaml"):
            continue
        if path.is_relative_to(layer_dir):
            if layers:
                layer.append(path)
        else:
            base.append(path)
    return base, layer


def resolve_directories(directories: Sequence[Path | str] | Path | str | None) -> list[Path]:
    """The directories a library loads from (None: the bundled one)."""
    if directories is None:
        return [default_directory()]
    if isinstance(directories, (str, Path)):
        return [Path(directories)]
    return [Path(d) for d in directories] or [default_directory()]


def library_digest(directories: Sequence[Path | str] | Path | str | None, *, layers: bool = True) -> str:
    """A short hash of every YAML file of the library (its version, stored with each scan)."""
    digest = hashlib.sha256()
    for d in resolve_directories(directories):
        digest.update(b"\x01directory\0")
        if not d.is_dir():
            continue
        base, layer = library_files(d, layers=layers)
        tables = [d / n for n in ("categories.yaml", "groups.yaml") if (d / n).exists()]
        for path in (*tables, *base, *layer):
            digest.update(str(path.relative_to(d)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _join_problems(problems: list[str]) -> str:
    head = problems[:50]
    more = f"\n... and {len(problems) - 50} more" if len(problems) > 50 else ""
    return f"{len(problems)} problem(s) in the signature library:\n" + "\n".join(head) + more


def _yaml_load(path: Path, data: bytes, problems: list[str]) -> Any:
    """The YAML document of a file, or None with a problem noted (bad syntax, too big, aliases)."""
    if len(data) > MAX_FILE_BYTES:
        problems.append(f"{path}: {len(data):,} bytes; a signature file may hold at most {MAX_FILE_BYTES:,}: "
                        "split it into one file per technology")
        return None
    if b"&" in data and _ALIAS.search(data) and _has_alias(data):
        problems.append(f"{path}: YAML aliases (*name) are not allowed in signature files (a few lines of "
                        "aliases can expand into gigabytes); write each value out")
        return None
    try:
        return yaml.load(data, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problems.append(f"{path}{where}: invalid YAML ({getattr(exc, 'problem', exc)}); fix the syntax")
        return None


def _has_alias(data: bytes) -> bool:
    """True when the YAML text uses an alias (read as parser events: nothing is expanded)."""
    try:
        return any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(data, Loader=_Loader))
    except yaml.YAMLError:
        return False  # the loader reports the syntax error


def _load_groups(d: Path, problems: list[str]) -> dict[int, str]:
    path = d / "groups.yaml"
    if not path.exists():
        return {}
    data = _yaml_load(path, path.read_bytes(), problems) or {}
    out: dict[int, str] = {}
    for key, value in data.items():
        name = value.get("name") if isinstance(value, dict) else value
        out[int(key)] = str(name)
    return out


def _load_categories(d: Path, groups: Mapping[int, str], problems: list[str]) -> dict[int, Category]:
    path = d / "categories.yaml"
    if not path.exists():
        return {}
    data = _yaml_load(path, path.read_bytes(), problems) or {}
    out: dict[int, Category] = {}
    for key, value in data.items():
        if not isinstance(value, dict) or "name" not in value:
            problems.append(f"{path}: category {key}: needs a mapping with a name")
            continue
        group_names = []
        for g in as_list(value.get("groups")):
            group_names.append(groups.get(int(g), str(g)) if isinstance(g, int) else str(g))
        out[int(key)] = Category(int(key), str(value["name"]), int(value.get("priority", 0)), tuple(group_names))
    return out


def _load_file(path: Path, data: bytes, problems: list[str]) -> list[Signature]:
    doc = _yaml_load(path, data, problems)
    if doc is None:
        return []
    items = doc if isinstance(doc, list) else [doc]
    out = []
    for i, item in enumerate(items):
        where = f"{path}" + (f"[{i}]" if isinstance(doc, list) else "")
        sig = _signature_from(item, where, problems)
        if sig is not None:
            out.append(sig)
    return out


def _signature_from(item: Any, where: str, problems: list[str]) -> Signature | None:
    if not isinstance(item, dict):
        problems.append(f"{where}: a signature must be a mapping with at least `name` and `categories`")
        return None
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(f"{where}: missing `name`; add `name: TechnologyName`")
        return None
    label = f'{where}: "{name}"'
    for key in item:
        if key not in ALL_KEYS and not str(key).startswith("x-"):
            hint = difflib.get_close_matches(str(key), ALL_KEYS, n=1)
            fix = f'did you mean "{hint[0]}"?' if hint else "remove it (see signatures/README.md)"
            problems.append(f"{label}: unknown field `{key}`; {fix}")
    cats = item.get("categories")
    if not cats:
        problems.append(f"{label}: `categories` is missing; add at least one category name")
        cats = []
    if not isinstance(item.get("provenance", ""), str):
        problems.append(f"{label}: `provenance` must be text saying where the rule came from")
    rules = {k: item[k] for k in RULE_KINDS if k in item}
    for kind, value in rules.items():
        _check_shape(label, kind, value, problems)
    examples = item.get("examples") or []
    if not isinstance(examples, list):
        problems.append(f"{label}: `examples` must be a list of {{match: ...}} / {{no_match: ...}}")
        examples = []
    return Signature(
        name=name,
        categories=tuple(str(c) for c in as_list(cats)),
        rules=rules,
        info={k: item[k] for k in INFO_KEYS if k in item},
        implies=tuple(str(x) for x in as_list(item.get("implies"))),
        requires=tuple(str(x) for x in as_list(item.get("requires"))),
        requires_category=tuple(str(x) for x in as_list(item.get("requiresCategory"))),
        excludes=tuple(str(x) for x in as_list(item.get("excludes"))),
        provenance=str(item.get("provenance", "")),
        examples=tuple(examples),
        path=where,
        raw=item,
    )


def _is_pattern(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _check_shape(label: str, kind: str, value: Any, problems: list[str]) -> None:
    if kind in LIST_KINDS:
        if not all(_is_pattern(v) for v in as_list(value)):
            problems.append(f"{label} {kind}: must be a pattern or a list of patterns")
    elif kind in KEYED_KINDS:
        if not isinstance(value, dict):
            problems.append(f"{label} {kind}: must be a mapping of name -> pattern")
        elif not all(_is_pattern(v) or (isinstance(v, list) and all(map(_is_pattern, v))) for v in value.values()):
            problems.append(f"{label} {kind}: every value must be a pattern (use \"\" for 'present')")
        elif kind == "dns":
            from detector.engine.network import RECORD_TYPES

            for rtype in value:
                if str(rtype).upper() not in RECORD_TYPES:
                    problems.append(f"{label} dns[{rtype!r}]: unknown record type; use one of {', '.join(RECORD_TYPES)}")
    elif kind == "dom":
        if isinstance(value, (str, list)):
            if not all(isinstance(v, str) for v in as_list(value)):
                problems.append(f"{label} dom: selectors must be text")
        elif isinstance(value, dict):
            for sel, spec in value.items():
                if not isinstance(spec, dict):
                    problems.append(f"{label} dom[{sel!r}]: must map to {{exists|text|attributes|properties}}")
                    continue
                for k in spec:
                    if k not in DOM_KEYS:
                        problems.append(f"{label} dom[{sel!r}]: unknown key `{k}`; use one of {', '.join(DOM_KEYS)}")
        else:
            problems.append(f"{label} dom: must be a selector, a list of selectors or a mapping")


def validate_library(library: Library) -> list[str]:
    """Cross-file checks: categories and relation targets exist."""
    problems: list[str] = []
    names = library.signatures
    cat_names = {c.name.lower() for c in library.categories.values()}
    all_cat_names = [c.name for c in library.categories.values()]
    for sig in names.values():
        label = f'{sig.path}: "{sig.name}"'
        for cat in sig.categories + sig.requires_category:
            if cat.lower() not in cat_names:
                problems.append(f"{label}: unknown category {cat!r}{_did_you_mean(cat, all_cat_names)}")
        for field_name, entries in (("implies", sig.implies), ("requires", sig.requires), ("excludes", sig.excludes)):
            for entry in entries:
                target = relation_name(entry)
                if target not in names:
                    problems.append(
                        f"{label} {field_name}: unknown technology {target!r}{_did_you_mean(target, list(names))}"
                    )
    return problems


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    hint = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f'; did you mean "{hint[0]}"?' if hint else ""


def slugify(name: str) -> str:
    """A file-name-safe slug, as the reference engine makes it.

    >>> slugify("Google Tag Manager")
    'google-tag-manager'
    """
    out = "".join(c if c.isascii() and (c.isalnum() or c == "-") else "-" for c in name.lower())
    while "--" in out:
        out = out.replace("--", "-")
    return out.strip("-") or "x"

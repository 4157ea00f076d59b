"""The rendered tier's pure half: what to read in a browser, and when a page is worth rendering.

No browser here (see :mod:`detector.crawl.render`), only data and matching:

- :data:`PROBE_SCRIPT` is the one function a browser evaluates per page.  Like Wappalyzer's
  extension it walks every ``js`` property path of the library on ``window`` (own properties
  only, a getter that throws counts as absent) and turns the value into text: strings and
  numbers as they are, anything else as ``"true"`` or ``"false"``.  It also reads the ``dom``
  rules' ``properties`` and serialises the rendered DOM.  The engine then matches the values
  (``Page.js``, ``Page.dom_properties``) and the rendered HTML like any page.
- :class:`RenderAdvisor` decides, from the static pass, whether rendering a site pays off
  (``--render auto``); :meth:`RenderAdvisor.reasons` says why, in words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from selectolax.lexbor import LexborHTMLParser

from detector.engine.signatures import Library, as_list

#: Evaluated in the page with ``{"chains": [...], "props": [[selector, property], ...],
#: "maxHtml": N}``; returns ``{"js": {path: text}, "props": {selector: {property: text}},
#: "html": rendered DOM}``.  Bounded: at most 20 nodes per selector, values cut to 1,000
#: characters, the DOM to ``maxHtml`` characters.
PROBE_SCRIPT = r"""
(probe) => {
  const MISSING = {};
  const text = (v) => (typeof v === "string" || typeof v === "number")
    ? String(v).slice(0, 1000) : String(!!v);
  const own = (o, k) => { try { return Object.prototype.hasOwnProperty.call(o, k); } catch (e) { return false; } };
  const js = {};
  for (const chain of probe.chains) {
    let value = window;
    try {
      for (const part of chain.split(".")) {
        if (value && value instanceof Object && own(value, part)) { value = value[part]; }
        else { value = MISSING; break; }
      }
    } catch (e) { value = MISSING; }
    if (value !== MISSING) { js[chain] = text(value); }
  }
  const props = {};
  for (const [selector, name] of probe.props) {
    let nodes = [];
    try { nodes = Array.from(document.querySelectorAll(selector)).slice(0, 20); } catch (e) { continue; }
    for (const node of nodes) {
      if (own(node, name)) {
        (props[selector] = props[selector] || {})[name] = text(node[name]);
        break;
      }
    }
  }
  let html = "";
  try {
    const dt = document.doctype ? "<!DOCTYPE " + document.doctype.name + ">" : "";
    html = (dt + document.documentElement.outerHTML).slice(0, probe.maxHtml);
  } catch (e) { html = ""; }
  return { js, props, html };
}
"""

#: Below this confidence a static detection is a candidate that js/dom rules can confirm.
CANDIDATE_CONFIDENCE = 50
#: Roots of ``js`` paths too common to say anything when a script names them.
COMMON_GLOBALS = frozenset({
    "window", "document", "navigator", "location", "self", "top", "parent", "frames", "console", "JSON",
    "Math", "Object", "Array", "String", "Number", "Boolean", "Promise", "Date", "RegExp", "Symbol", "Error",
    "Map", "Set", "localStorage", "sessionStorage", "performance", "history", "screen", "crypto", "fetch",
    "XMLHttpRequest", "define", "require", "module", "exports", "process", "global", "globalThis", "config",
    "data", "app", "settings", "options", "default", "version", "init", "page", "site", "user", "event",
})
#: Categories whose technologies alone do not pay for a render: utility code on half the web
#: (a jQuery version is not worth a browser); they are still read when a page is rendered.
LOW_VALUE_CATEGORIES = frozenset({"JavaScript libraries", "UI frameworks", "Font scripts", "JavaScript graphics",
                                  "Miscellaneous"})
#: Categories of the site's own platform, where a version says what the site runs and how old
#: it is; elsewhere (front-end libraries and frameworks, widgets, SaaS scripts) a version only
#: js rules read is no reason to render.
VERSION_CATEGORIES = frozenset({"CMS", "Ecommerce", "Web frameworks", "Blogs", "Wikis", "Message boards", "LMS",
                                "DMS", "Static site generator", "Page builders", "Documentation"})
#: What tag managers deliver: when the static pass already found one of these, the page
#: carries its tags itself and a container adds no reason to render.
TAG_CATEGORIES = frozenset({"Analytics", "Advertising", "Retargeting", "Marketing automation", "A/B Testing",
                            "Personalisation", "Customer data platform", "Segmentation", "Affiliate programs",
                            "Surveys", "Live chat", "RUM", "Heatmaps"})
#: Consent managers hold a container or its tags back until the visitor agrees; a headless
#: browser never does, so behind one a container injects nothing a render could read.
CONSENT_CATEGORIES = frozenset({"Cookie compliance"})
#: Evidence that the page runs a script: a script tag's ``src``, a loader snippet that adds one,
#: inline code a ``scripts`` rule matched.  (A comment, a ``<noscript>`` iframe, a resource
#: hint or a global's name in code shows no container that runs.)
RUNNING_SOURCES = frozenset({"script_src", "script_loader", "script", "scripts"})
#: Containers that client-side frameworks mount into; empty in the HTML, an app shell.
SHELL_MOUNTS = ("root", "app", "__next", "__nuxt", "___gatsby", "svelte", "q-app")
#: Less visible text than this, with scripts, is an app shell: the page is built in the browser.
SHELL_TEXT = 200
#: An identifier used as a global in code: not a property (``.x``) or key, but read, called,
#: indexed or assigned (``X.y``, ``X(``, ``X[``, ``X =``); and ``window.X`` / ``window["X"]``.
#: (Matched per root the code names, from the root on: a pattern that starts with a literal is
#: searched fast, one that starts with a look-behind is tried at every character.)
_IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]{2,60}")
_USE_AFTER = re.compile(r"\s*(?:[.(\[]|=(?!=))")
_NOT_BEFORE = frozenset("./\\:-$_")
_DECLARATIONS = ("var ", "let ", "const ", "function ")
_WINDOW_USE = re.compile(r"""window\s*(?:\.\s*([A-Za-z_$][\w$]{2,60})|\[\s*["']([A-Za-z_$][\w$]{2,60})["']\s*\])""")
#: A global assigned through an alias of ``window`` (``w['SalesmanagoObject'] = r`` in a loader
#: snippet); counted for distinctive names only (not plain words).
_INDEXED_SET = re.compile(r"""\[\s*["']([A-Za-z_$][\w$]{2,60})["']\s*\]\s*=(?!=)""")
_URL_NAME = re.compile(r"[A-Za-z_$][\w$]{2,60}")
#: A root that is a plain word (``search``, ``analytics``, ``baseUrl``): code uses such names
#: for its own variables, so only ``window.word`` or the rule's own ``word.next`` path counts.
_PLAIN_WORD = re.compile(r"[a-z][A-Za-z]*")
_STATIC_KINDS = ("url", "html", "text", "css", "scriptSrc", "scripts", "headers", "cookies", "meta", "dom")


def browser_probes(library: Library) -> tuple[list[str], list[tuple[str, str]]]:
    """What a browser must read for the library: every ``js`` path, every (selector, property) of ``dom`` rules."""
    chains: set[str] = set()
    props: set[tuple[str, str]] = set()
    for sig in library.signatures.values():
        js = sig.rules.get("js")
        if isinstance(js, Mapping):
            chains.update(str(c) for c in js)
        dom = sig.rules.get("dom")
        if isinstance(dom, Mapping):
            for selector, rule in dom.items():
                if isinstance(rule, Mapping) and isinstance(rule.get("properties"), Mapping):
                    props.update((str(selector), str(name)) for name in rule["properties"])
    return sorted(chains), sorted(props)


@dataclass(frozen=True, slots=True)
class StaticTechnology:
    """What the static pass found, as the advisor reads it: ``sources`` are its evidence's."""

    name: str
    version: str | None = None
    confidence: int = 100
    sources: frozenset[str] = frozenset()


def static_technologies(found: Iterable[Any]) -> list[StaticTechnology]:
    """The advisor's view of detections: the engine's (evidence objects) or a site's (evidence mappings)."""
    out = []
    for d in found:
        sources = frozenset(str(e.get("source", "") if isinstance(e, Mapping) else getattr(e, "source", ""))
                            for e in getattr(d, "evidence", ()))
        out.append(StaticTechnology(d.technology, d.version, d.confidence, sources))
    return out


class RenderAdvisor:
    """Built once from the library; says whether rendering a site's homepage can change its verdict.

    A render can add only what the browser reads: values of ``js`` paths, DOM that scripts
    build (``dom`` rules and every page rule again on the rendered HTML) and the hosts of XHR
    and fetch calls.  It cannot add a technology the static pass already found, a version of
    a vendor-hosted (SaaS) script (the vendor's, the same on every site), anything a script
    does only after consent, a click or a scroll, nor anything of a technology the library has
    no browser rule for.  So ``auto`` renders a page only for these reasons
    (:meth:`reasons`), each naming what the render would read:

    1. *candidate*: a technology found with confidence under 50 that has ``js`` or ``dom``
       property rules, which can confirm it;
    2. *version*: a self-hosted technology of the site's platform (CMS, ecommerce, web
       framework...: :data:`VERSION_CATEGORIES`) found without a version that only its ``js``
       rules read (a SaaS script's version is the vendor's, the same on every site; a
       front-end library's or a widget's alone is not worth a browser);
    3. *tag manager*: a container the page runs (a script tag, a loader snippet: not a
       comment, a ``<noscript>`` frame or a global's name) while the static pass found no
       technology of the kinds containers deliver (analytics, advertising, marketing...: a
       page that shows none carries its tags in the container) and no consent manager (which
       holds the tags back from a browser that never consents);
    4. *app shell*: an empty ``#root``/``#app``/``#__next``... mount, or scripts and under 200
       characters of text: the page is built in the browser;
    5. *named global*: a ``js`` rule's root global that inline code uses as a global
       (``Intercom(``, ``window._paq``, ``w['SalesmanagoObject'] =``) or a script file is named after, of a technology the
       static pass did not find.  A plain-word root (``search``, ``analytics``) counts only as
       ``window.word`` or with the rule's next segment (``search.indexName``); a root several
       technologies share (``jQuery``) only with its next segment.

    Technologies of utility categories (:data:`LOW_VALUE_CATEGORIES`) give no reason on their own.
    """

    def __init__(self, library: Library) -> None:
        #: js path root -> {technology: its paths from that root}
        self.roots: dict[str, dict[str, list[str]]] = {}
        #: technologies with js or dom-property rules; those whose js rules carry a version
        self.browser_techs: set[str] = set()
        self.browser_versions: set[str] = set()
        self.tag_managers = self._in(library, {"Tag managers"})
        self.tag_kinds = self._in(library, TAG_CATEGORIES)
        self.consent = self._in(library, CONSENT_CATEGORIES)
        #: technologies whose every category is low-value: they give no reason to render
        self.low_value = {s.name for s in library.signatures.values()
                          if s.categories and all(c in LOW_VALUE_CATEGORIES for c in s.categories)}
        for sig in library.signatures.values():
            js = sig.rules.get("js")
            if isinstance(js, Mapping):
                self.browser_techs.add(sig.name)
                for chain, patterns in js.items():
                    root = str(chain).split(".", 1)[0]
                    if len(root) >= 3 and root not in COMMON_GLOBALS:
                        self.roots.setdefault(root, {}).setdefault(sig.name, []).append(str(chain))
                    if (any("\\;version:" in str(p) for p in as_list(patterns)) and not _static_version(sig.rules)
                            and not sig.info.get("saas") and VERSION_CATEGORIES.intersection(sig.categories)):
                        self.browser_versions.add(sig.name)
            dom = sig.rules.get("dom")
            if isinstance(dom, Mapping) and any(isinstance(r, Mapping) and "properties" in r for r in dom.values()):
                self.browser_techs.add(sig.name)

    @staticmethod
    def _in(library: Library, categories: Iterable[str]) -> set[str]:
        """Technologies in any of the categories named."""
        names = {c.name for c in (library.category_by_name(n) for n in categories) if c is not None}
        return {s.name for s in library.signatures.values() if names.intersection(s.categories)}

    def reasons(self, html: str, found: Iterable[StaticTechnology], *, limit: int = 3) -> list[str]:
        """Why rendering this homepage can change its verdict (empty: it cannot), at most
        ``limit`` reasons; see the class docstring for the rules."""
        known = {t.name: t for t in found}
        out: list[str] = []
        for t in known.values():
            if t.name in self.low_value:
                continue
            if t.name in self.tag_managers:
                if self._container_can_add(t, known):
                    out.append(f"tag manager {t.name} runs and no tags were found")
            elif t.name in self.browser_versions and not t.version:
                out.append(f"{t.name}: version in js rules")
            elif t.name in self.browser_techs and t.confidence < CANDIDATE_CONFIDENCE:
                out.append(f"{t.name}: confidence {t.confidence}, js/dom rules can confirm")
            if len(out) >= limit:
                return out
        if not html:
            return out
        tree = LexborHTMLParser(html)
        code: list[str] = []
        urls: list[str] = []
        for node in tree.css("script"):
            src = node.attributes.get("src")
            if src:
                urls.append(src)
            elif (node.attributes.get("type") or "").strip().lower() != "application/ld+json":
                code.append(node.text(deep=True) or "")
        shell = _app_shell(tree, bool(code or urls))
        if shell:
            out.append(shell)
        names = self._named_roots("\n".join(code)[:2_000_000], urls, set(known) | self.low_value)
        if names:
            out.append("scripts name " + ", ".join(names[:4]))
        return out[:limit]

    def _container_can_add(self, manager: StaticTechnology, known: Mapping[str, StaticTechnology]) -> bool:
        """True when a tag manager's container runs and could inject what the page does not show."""
        if manager.sources and not manager.sources & RUNNING_SOURCES:
            return False  # (no sources: the caller did not say; the container is taken to run)
        return not any(name in self.tag_kinds or name in self.consent for name in known)

    def _named_roots(self, code: str, urls: Sequence[str], known: set[str]) -> list[str]:
        """Roots of js rules used as globals in the code or named by a script file, of
        technologies not yet found.  A lower-case word of five letters or fewer (``next``,
        ``core``) counts only as ``window.word``, a longer plain word (``search``,
        ``baseUrl``) also with the rule's next segment (``search.indexName``); a script file
        name only for a distinctive root (capitals, digits, ``_`` or ``$``: ``jQuery``,
        ``NREUM``, ``_paq``)."""
        named_here = set(_IDENTIFIER.findall(code)) & self.roots.keys()
        tokens = {t for t in named_here if not (t.islower() and t.isalpha() and len(t) <= 5) and _used_as_global(code, t)}
        window = {a or b for m in _WINDOW_USE.finditer(code) if not _in_word(code, m.start())
                  for a, b in [m.groups()]}
        tokens.update(t for t in _INDEXED_SET.findall(code) if not _PLAIN_WORD.fullmatch(t))
        for url in urls:
            name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1][:200]
            tokens.update(t for t in _URL_NAME.findall(name) if not (t.islower() and t.isalpha()))
        named = []
        for token in sorted((tokens | window) & self.roots.keys()):
            techs = self.roots[token]
            left = [t for t in techs if t not in known]
            if token not in window and _PLAIN_WORD.fullmatch(token):
                # A plain word names a technology only with the rule's next segment.
                left = [t for t in left if any("." in c and _two_segments(c) in code for c in techs[t])]
            elif len(techs) > 1:
                # A root several technologies share (jQuery: jQuery UI, jQuery Mobile...) names
                # one of them only with its next segment (``jQuery.mobile``).
                left = [t for t in left if any(_two_segments(c) in code for c in techs[t])]
            if left:
                named.append(token)
        return named


def _in_word(code: str, at: int) -> bool:
    """True when ``code[at]`` continues a word (no ``\\b`` before it)."""
    return at > 0 and (code[at - 1].isalnum() or code[at - 1] == "_")


def _used_as_global(code: str, name: str) -> bool:
    """True when the identifier ``name`` is used as a global somewhere in ``code``: read,
    called, indexed or assigned (``name.x``, ``name(``, ``name[``, ``name =``), not as a
    property (``.name``), a declaration (``var name``) or part of a longer name."""
    at = code.find(name)
    while at >= 0:
        end = at + len(name)
        before = code[at - 1] if at else ""
        if (not (before.isalnum() or before in _NOT_BEFORE) and not code.endswith(_DECLARATIONS, 0, at)
                and not (end < len(code) and (code[end].isalnum() or code[end] in "_$"))
                and _USE_AFTER.match(code, end)):
            return True
        at = code.find(name, at + 1)
    return False


def _two_segments(chain: str) -> str:
    """``a.b`` of a path ``a.b.c`` (the whole path when shorter).

    >>> _two_segments("jQuery.fn.jquery"), _two_segments("Shopify")
    ('jQuery.fn', 'Shopify')
    """
    return ".".join(chain.split(".")[:2])


def _static_version(rules: Mapping[str, object]) -> bool:
    """True when a static rule of the signature can read a version."""
    return any("\\;version:" in str(rules[k]) for k in _STATIC_KINDS if k in rules)


def _app_shell(tree: LexborHTMLParser, has_scripts: bool) -> str:
    """Why the page looks built in the browser, or "" (``tree`` loses its scripts and styles)."""
    mounts: dict[str | None, Any] = {}
    for node in tree.css(", ".join(f"#{m}" for m in SHELL_MOUNTS)):
        mounts.setdefault(node.attributes.get("id"), node)  # the first of each id, as getElementById
    for mount in SHELL_MOUNTS:
        found = mounts.get(mount)
        if found is not None and not (found.text(deep=True) or "").strip() and next(found.iter(), None) is None:
            return f"empty #{mount}"
    body = tree.body
    if not has_scripts or body is None:
        return ""
    # text of <script>/<noscript>/<style>/<template> is no visible text
    tree.strip_tags(["script", "noscript", "style", "template"])
    text = " ".join((body.text(deep=True, separator=" ") or "").split())
    if len(text) < SHELL_TEXT:
        return f"app shell: {len(text)} characters of text"
    return ""

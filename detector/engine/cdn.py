"""Libraries (and their versions) named by the URL shapes of public package CDNs.

A page that loads ``https://cdnjs.cloudflare.com/ajax/libs/d3/3.5.17/d3.min.js`` uses D3
3.5.17 whatever the library's own rules say: the CDN's path names the package and its
version.  The shapes read (default mode only):

* cdnjs: ``cdnjs.cloudflare.com/ajax/libs/NAME/VERSION/...``
* Google Hosted Libraries: ``ajax.googleapis.com/ajax/libs/NAME/VERSION/...``
* jsDelivr: ``cdn.jsdelivr.net/npm/[@SCOPE/]NAME@VERSION/...`` and ``cdn.jsdelivr.net/gh/OWNER/REPO@VERSION/...``
* unpkg: ``unpkg.com/[@SCOPE/]NAME@VERSION/...``
* esm.sh: ``esm.sh/[@SCOPE/]NAME@VERSION/...``

A package is tied to a technology through a name index built once, when the engine is
compiled (and cached with it): the technology's name, the host of its ``website`` and, for a
GitHub or npm website, the repository or package name, each folded to a key (lower case,
letters and digits only, a trailing ``js`` dropped: ``Moment.js``, ``moment``, ``momentjs.com``
all give ``moment``).  Only technologies delivered as front-end assets are indexed
(:data:`ASSET_CATEGORIES`: a package called ``wordpress`` on npm says nothing about the CMS),
and a key that two technologies share is left out, so an index hit names one technology.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

T = TypeVar("T")

#: Categories of technologies a page loads as files from a package CDN.
ASSET_CATEGORIES = frozenset({
    "JavaScript libraries", "JavaScript frameworks", "UI frameworks", "Font scripts", "JavaScript graphics",
    "Video players", "Rich text editors", "Editors", "Photo galleries", "Maps", "Mobile frameworks",
    "Cookie compliance", "Accessibility", "Miscellaneous",
})
#: Host and path prefix of each CDN shape, with the regex that reads the rest of the URL.
_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("cdnjs.cloudflare.com/ajax/libs/", re.compile(r"([A-Za-z0-9][\w.-]{0,100})/([^/?#]{1,40})/")),
    ("ajax.googleapis.com/ajax/libs/", re.compile(r"([A-Za-z0-9][\w.-]{0,100})/([^/?#]{1,40})/")),
    ("cdn.jsdelivr.net/npm/", re.compile(r"((?:@[\w.-]{1,100}/)?[\w.-]{1,100})@([^/?#]{1,40})")),
    ("cdn.jsdelivr.net/gh/", re.compile(r"[\w.-]{1,100}/([\w.-]{1,100})@([^/?#]{1,40})")),
    ("unpkg.com/", re.compile(r"((?:@[\w.-]{1,100}/)?[\w.-]{1,100})@([^/?#]{1,40})")),
    ("esm.sh/", re.compile(r"(?:v\d{1,4}/)?((?:@[\w.-]{1,100}/)?[\w.-]{1,100})@([^/?#]{1,40})")),
)
HOSTS = tuple(prefix.split("/", 1)[0] for prefix, _ in _SHAPES)
#: A version as CDNs write it: numbers, maybe a pre-release tag (``3.0.0-rc.1``).
_VERSION = re.compile(r"v?(\d{1,6}(?:\.\d{1,6}){0,3}(?:-[0-9A-Za-z.]{1,20})?)")
_WEBSITE = re.compile(r"(?:https?:)?//(?:www\.)?([^/?#:]+)(/[^?#]*)?", re.IGNORECASE)
#: Most index keys a library may hold (a bound on the cached engine's size).
MAX_KEYS = 20000


def package_key(name: str) -> str:
    """The folded form of a package or technology name.

    >>> [package_key(n) for n in ("Moment.js", "moment", "@scope/Font-Awesome", "vuejs", "D3")]
    ['moment', 'moment', 'fontawesome', 'vue', 'd3']
    """
    name = name.rsplit("/", 1)[-1].lower()
    key = re.sub(r"[^a-z0-9]", "", name)
    if key.endswith("js") and len(key) > 3:
        key = key[:-2]
    return key


def website_keys(website: str) -> list[str]:
    """Keys a technology's website gives: its host's main label, and a GitHub repository's or an
    npm package's name.

    >>> website_keys("https://momentjs.com"), website_keys("https://github.com/alpinejs/alpine")
    (['moment'], ['alpine'])
    >>> website_keys("https://www.npmjs.com/package/@scope/lazysizes")
    ['lazysizes']
    """
    m = _WEBSITE.match(website.strip())
    if not m:
        return []
    host, path = m.group(1).lower(), (m.group(2) or "").strip("/")
    parts = path.split("/") if path else []
    if host == "github.com":
        return [package_key(parts[1])] if len(parts) >= 2 else []
    if host.endswith("npmjs.com"):
        return [package_key(parts[-1])] if len(parts) >= 2 and parts[0] == "package" else []
    labels = host.split(".")
    return [package_key(labels[-2])] if len(labels) >= 2 else []


def build_index(technologies: Iterable[tuple[str, Iterable[str], str]]) -> dict[str, str]:
    """Package key -> technology name, from (name, categories, website) of each technology.

    A technology's own name wins over another's website (Moment Timezone's site is
    momentjs.com, but ``moment`` is Moment.js); a key that two names, or else two websites,
    give is left out, and so are keys shorter than two characters.

    >>> build_index([("Moment.js", ["JavaScript libraries"], "https://momentjs.com"),
    ...              ("Moment Timezone", ["JavaScript libraries"], "https://momentjs.com/timezone/"),
    ...              ("WordPress", ["CMS"], "https://wordpress.org")])
    {'moment': 'Moment.js', 'momenttimezone': 'Moment Timezone'}
    """
    by_name: dict[str, set[str]] = {}
    by_site: dict[str, set[str]] = {}
    for name, categories, website in technologies:
        if not ASSET_CATEGORIES.intersection(categories):
            continue
        by_name.setdefault(package_key(name), set()).add(name)
        for key in website_keys(website or ""):
            by_site.setdefault(key, set()).add(name)
    index = {key: next(iter(names)) for key, names in by_site.items() if len(names) == 1 and len(key) >= 2}
    for key, names in by_name.items():
        index.pop(key, None)
        if len(names) == 1 and len(key) >= 2:
            index[key] = next(iter(names))
    return dict(sorted(index.items())[:MAX_KEYS])


def cdn_package(url: str) -> tuple[str, str] | None:
    """(package name, version) a package-CDN URL names, or None.

    >>> cdn_package("https://cdnjs.cloudflare.com/ajax/libs/d3/3.5.17/d3.min.js")
    ('d3', '3.5.17')
    >>> cdn_package("https://cdn.jsdelivr.net/npm/vue@2.6.0"), cdn_package("//unpkg.com/@scope/lib@1.2.3/x.js")
    (('vue', '2.6.0'), ('@scope/lib', '1.2.3'))
    >>> cdn_package("https://cdn.jsdelivr.net/gh/owner/repo@v1.0/a.js"), cdn_package("https://unpkg.com/react")
    (('repo', '1.0'), None)
    """
    for prefix, rx in _SHAPES:
        at = url.find(prefix, 0, 64)
        if at < 0 or url[at - 1 : at] not in ("/", "."):
            continue
        m = rx.match(url, at + len(prefix))
        if m is None:
            return None
        version = _VERSION.fullmatch(m.group(2))
        return m.group(1), version.group(1) if version else ""
    return None


def match_cdn(urls: Iterable[str], index: Mapping[str, T]) -> list[tuple[T, str, str]]:
    """(technology, version, url) for each URL of ``urls`` that a package CDN path ties to a
    technology of ``index`` (package key -> technology), in order, once per technology and URL.

    >>> match_cdn(["https://cdnjs.cloudflare.com/ajax/libs/moment.js/2.29.4/moment.min.js"], {"moment": "Moment.js"})
    [('Moment.js', '2.29.4', 'https://cdnjs.cloudflare.com/ajax/libs/moment.js/2.29.4/moment.min.js')]
    """
    out: list[tuple[T, str, str]] = []
    seen: set[tuple[T, str]] = set()
    for url in urls:
        found = cdn_package(url)
        if found is None:
            continue
        tech = index.get(package_key(found[0]))
        if tech is None or (tech, url) in seen:
            continue
        seen.add((tech, url))
        out.append((tech, found[1], url))
    return out


_HREF = re.compile(r"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)


def stylesheet_urls(html: str, limit: int = 200, hosts: Sequence[str] = HOSTS) -> list[str]:
    """The hrefs of ``<link>`` tags that point at a package CDN (resource hints left out).

    ``hosts``: the CDN hosts to look for (of :data:`HOSTS`, in its order), when the caller
    knows which of them occur.

    >>> stylesheet_urls('<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/a@1/a.css">'
    ...                 '<link rel="preconnect" href="https://cdn.jsdelivr.net/npm/b@1/">')
    ['https://cdn.jsdelivr.net/npm/a@1/a.css']
    """
    from detector.engine.evidence import is_hint_rel, tag_rel

    out: list[str] = []
    for host in hosts:
        pos = html.find(host)
        while pos >= 0 and len(out) < limit:
            lt = html.rfind("<", max(0, pos - 2048), pos)
            gt = html.find(">", pos)
            if lt >= 0 and gt > pos and html[lt + 1 : lt + 5].lower() == "link":
                tag = html[lt:gt]
                m = _HREF.search(tag)
                href = (m.group(1) or m.group(2) or m.group(3) or "") if m else ""
                if host in href and not is_hint_rel(tag_rel(tag)) and href not in out:
                    out.append(href.strip())
            pos = html.find(host, pos + 1)
    return out

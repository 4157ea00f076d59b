"""WordPress plugin and theme folders in the page's asset URLs (the ``asset_path`` source).

A WordPress plugin or theme serves its files from its own folder,
``/wp-content/plugins/<slug>/`` or ``/wp-content/themes/<slug>/``, named by its slug on
wordpress.org.  Many rules of the library know a plugin by a script in that folder
(``/wp-content/plugins/mailchimp-for-wp/.+\\.js``), so a page that loads only the plugin's
stylesheet, an image or a font from it goes unseen.  The folder itself is the evidence,
whatever file is served from it.

The index is built from the library, in general: every rule (of any kind) that names a
``wp-content/plugins/<slug>/`` or ``wp-content/themes/<slug>/`` folder literally ties that
slug to its technology; a slug that two technologies name is left out.  On a page, every
occurrence of such a folder in the HTML (in ``src``, ``href``, ``srcset``, ``url(...)`` or
inline code) is looked up.  The scan is linear (``str.find``) and capped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

#: A plugin or theme folder named literally in a rule's pattern (``\\-`` and ``\\/`` escapes allowed).
_IN_RULE = re.compile(r"wp-content\\?/(plugins|themes)\\?/((?:[a-z0-9_]|\\?-){2,80}?)\\?/")
#: A plugin or theme folder in a page.
_IN_PAGE = re.compile(r"(plugins|themes)/([A-Za-z0-9_-]{2,80})/")
_ANCHOR = "/wp-content/"
#: Folder occurrences looked at per page.
MAX_OCCURRENCES = 2000


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def build_index(technologies: Iterable[tuple[str, Any]]) -> dict[tuple[str, str], str]:
    """(folder kind, slug) -> technology name, from (name, rules) of each technology.

    >>> build_index([("Contact Form 7", {"scriptSrc": [r"/wp-content/plugins/contact-form-7/"]}),
    ...              ("Astra", {"dom": "link[href*='/wp-content/themes/astra/']"}),
    ...              ("A", {"html": r"wp-content/plugins/shared\\-slug/"}), ("B", {"html": "wp-content/plugins/shared-slug/"}),
    ...              ("C", {"scriptSrc": r"/wp-content/plugins/(?:x|y)/"})])
    {('plugins', 'contact-form-7'): 'Contact Form 7', ('themes', 'astra'): 'Astra'}
    """
    found: dict[tuple[str, str], set[str]] = {}
    for name, rules in technologies:
        for text in _strings(rules):
            if "wp-content" not in text:
                continue
            for m in _IN_RULE.finditer(text):
                slug = m.group(2).replace("\\-", "-")
                found.setdefault((m.group(1), slug), set()).add(name)
    return {key: next(iter(names)) for key, names in sorted(found.items()) if len(names) == 1}


def asset_folders(html: str) -> list[tuple[str, str, str]]:
    """(folder kind, slug, excerpt) of every plugin or theme folder the HTML names, deduplicated.

    >>> asset_folders("<link rel='stylesheet' href='https://s.example/wp-content/plugins/contact-form-7/a.css'>")
    [('plugins', 'contact-form-7', '/wp-content/plugins/contact-form-7/')]
    >>> asset_folders('<a href="/blog/wp-content-tips/">tips</a>')
    []
    """
    out: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str]] = set()
    at = html.find(_ANCHOR)
    n = 0
    while at >= 0 and n < MAX_OCCURRENCES:
        n += 1
        start = at + len(_ANCHOR)
        m = _IN_PAGE.match(html, start, start + 100)
        if m is not None:
            key = (m.group(1), m.group(2).lower())
            if key not in seen:
                seen.add(key)
                out.append((key[0], key[1], html[at : m.end()]))
        at = html.find(_ANCHOR, start)
    return out

"""Rules of evidence of the default ("detector") mode: what a match proves, beyond the reference.

The reference engine (and the engine's "wappalyzer" mode) counts every pattern match alike.
The default mode adds the rules below; each is general (no technology named) and is
described in README.md, "Evidence rules".
"""

from __future__ import annotations

#: Percent of a scriptSrc rule's confidence that a URL built by inline code carries (the
#: ``script_loader`` source).  The URL is in the code that would load the script, not a
#: script the page was seen to load: the snippet may sit behind a consent check or never
#: run.  So it weighs less than a ``<script src>``, but alone still makes a detection at
#: confidence 80 (a rule written at 100), above any usual reporting threshold.
LOADER_CONFIDENCE = 80


def loader_confidence(rule_confidence: int) -> int:
    """The confidence of a script_loader match of a rule written with ``rule_confidence``.

    >>> loader_confidence(100), loader_confidence(50)
    (80, 40)
    """
    return rule_confidence * LOADER_CONFIDENCE // 100

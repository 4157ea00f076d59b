"""Rules of evidence of the default ("detector") mode: what a match proves, beyond the reference.

The reference engine (and the engine's "wappalyzer" mode) counts every pattern match alike.
The default mode adds the rules below; each is general (no technology named) and is
described in README.md, "Evidence rules".
"""

from __future__ import annotations

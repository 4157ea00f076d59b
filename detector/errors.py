"""Exceptions raised by detector; every one derives from DetectorError."""

from __future__ import annotations


class DetectorError(Exception):
    """Base class of every error detector raises on purpose."""


class SignatureError(DetectorError):
    """A signature file or pattern is invalid; the message names the place and the fix."""


class PageError(DetectorError):
    """A page given to the engine cannot be read (bad HAR, bad headers file...)."""

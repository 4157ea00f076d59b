"""Exceptions raised by detector; every one derives from DetectorError.

Each carries the exit status the command line ends with (``exit_code``), sysexits.h style, the
same in every command: see the README's "Exit status" table.
"""

from __future__ import annotations

#: sysexits.h: the input data was incorrect in some way (a binary file given as a list).
EX_DATAERR = 65
#: sysexits.h: an input file did not exist or was not readable.
EX_NOINPUT = 66
#: sysexits.h: a (user-specified) output file cannot be created or written (a read-only database).
EX_CANTCREAT = 73
#: sysexits.h: temporary failure, try again later (another run holds the database's lock).
EX_TEMPFAIL = 75


class DetectorError(Exception):
    """Base class of every error detector raises on purpose."""

    #: The exit status of a command that stops on this error.
    exit_code = 1


class SignatureError(DetectorError):
    """A signature file or pattern is invalid; the message names the place and the fix."""


class PageError(DetectorError):
    """A page given to the engine cannot be read (bad HAR, bad headers file...)."""


class MissingInputError(DetectorError):
    """An input file (domain list, accounts CSV, rules, cases...) does not exist or cannot be read."""

    exit_code = EX_NOINPUT


class BinaryInputError(DetectorError):
    """An input file that must be text is not (an image, a spreadsheet, an archive...)."""

    exit_code = EX_DATAERR

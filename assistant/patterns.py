"""Regular expressions from outside (a template's answer_pattern, a suite's or a promptfoo
config's regex assertion), run in time linear in the text whatever the pattern: RE2.

Python's `re` backtracks: '(.*)(.*)(.*)Z' took minutes on a 500-character reply, and
'^(a|aa)+$' grows exponentially. RE2 (google-re2) runs both at once; what it cannot promise
that for (backreferences, lookarounds) it refuses with a ValueError, and the caller decides:
a template refuses the pattern, an assertion falls back to a time limit.
"""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=256)
def linear(pattern: str, flags: str = ""):
    """`pattern` compiled by RE2 with inline `flags` ("i": any case, "m": ^ and $ at each line,
    "s": . takes newlines); ValueError naming what RE2 refused.

    >>> linear(r"^answer:\\s*(.+)$", "mi").search("so...\\nAnswer: 42").group(1)
    '42'
    >>> linear(r"(a)\\1")
    Traceback (most recent call last):
    ValueError: invalid escape sequence: \\1
    """
    import re2

    options = re2.Options()
    options.log_errors = False  # the error is raised here, not also logged to stderr
    try:
        return re2.compile(f"(?{flags}){pattern}" if flags else pattern, options)
    except re2.error as e:
        reason = e.args[0] if e.args else e
        raise ValueError(reason.decode(errors="replace") if isinstance(reason, bytes)
                         else str(reason)) from None

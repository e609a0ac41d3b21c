"""How names, phones and record numbers are folded for search, identically on both sides.

Search is accent- and case-insensitive: "Núñez", "nunez" and "NUNEZ" fold to "nunez".
The embedded PostgreSQL ships no `unaccent` extension, so the folding happens here and
the result is stored beside the record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from unidecode import unidecode

_NON_WORD = re.compile(r"[^a-z0-9]+")
_PHONE_CHARS = re.compile(r"^[+\d\s().\-/]+$", re.ASCII)
_DIGITS = re.compile(r"\D+", re.ASCII)

# Digits at the end of a phone number that the front desk usually types to find someone.
PHONE_SUFFIX_DIGITS = 4


def fold(text: str) -> str:
    """Lower-case ASCII words separated by single spaces."""
    return " ".join(_NON_WORD.split(unidecode(text).lower())).strip()


def phone_tokens(phone: str | None) -> list[str]:
    """The digit strings a phone number can be found by: full, without country code, tail."""
    if not phone:
        return []
    digits = _DIGITS.sub("", phone)
    if not digits:
        return []
    tokens = [digits]
    if phone.strip().startswith("+"):
        try:
            import phonenumbers

            national = str(phonenumbers.parse(phone).national_number)
        except Exception:
            national = ""
        if national and national != digits:
            tokens.append(national)
    if len(digits) > PHONE_SUFFIX_DIGITS:
        tokens.append(digits[-PHONE_SUFFIX_DIGITS:])
    return tokens


def search_document(*, names: Iterable[str | None], phone: str | None, mrn: str | None) -> str:
    """The folded text stored with a patient and matched by prefix search."""
    parts = [fold(n) for n in names if n]
    parts.extend(phone_tokens(phone))
    if mrn:
        folded = fold(mrn)
        # "P-000123" is found as "p000123", "P-0001" and "000123".
        parts.extend({folded, folded.replace(" ", "")})
    return " ".join(p for p in parts if p)


MAX_TOKEN_LENGTH = 64


def tokens(document: str) -> set[str]:
    """The distinct words of a search document, as stored in the token index."""
    return {t[:MAX_TOKEN_LENGTH] for t in document.split(" ") if t}


def prefix_range(term: str) -> tuple[str, str]:
    """Bounds `[low, high)` that hold exactly the tokens starting with `term` in byte order.

    Terms are folded to [a-z0-9], so bumping the last character gives the upper bound.
    """
    term = term[:MAX_TOKEN_LENGTH]
    return term, term[:-1] + chr(ord(term[-1]) + 1)


def query_terms(q: str) -> list[str]:
    """Split a search box entry into folded terms; a phone-looking entry is one term."""
    stripped = q.strip()
    if stripped and _PHONE_CHARS.match(stripped) and any(c.isdigit() for c in stripped):
        return [_DIGITS.sub("", stripped)]
    return [t for t in fold(stripped).split(" ") if t]

"""The bundled catalogue of laboratory tests, and how a result is flagged.

A doctor orders tests by code; the lab enters one value per analyte and both sides flag it
the same way: numbers against the adult reference range and the critical limits,
qualitative results ("negative", "positive") against the expected text. The ranges are
general adult ones; a lab that reports its own range sends it with the value, and that
range is the one used.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared_models.search import fold

Flag = Literal["normal", "low", "high", "critical_low", "critical_high", "abnormal"]
ABNORMAL: frozenset[str] = frozenset({"low", "high", "critical_low", "critical_high",
                                      "abnormal"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Analyte(_Strict):
    id: str
    name_en: str
    name_es: str
    unit: str
    low: float | None = None
    high: float | None = None
    critical_low: float | None = None
    critical_high: float | None = None
    # For qualitative results: the expected (normal) answer.
    normal_text: str | None = None


class LabTest(_Strict):
    code: str
    name_en: str
    name_es: str
    analytes: tuple[Analyte, ...]


class Catalogue(_Strict):
    version: str
    tests: tuple[LabTest, ...]


class UnknownTestError(LookupError):
    """A test code that is not in the bundled catalogue."""


@cache
def catalogue() -> Catalogue:
    bundled = resources.files("shared_models").joinpath("lab_catalogue/catalog.json")
    text = bundled.read_text("utf-8")
    loaded = Catalogue.model_validate(json.loads(text))
    codes = [t.code for t in loaded.tests]
    if len(codes) != len(set(codes)):
        raise ValueError("the lab catalogue repeats a test code")
    return loaded


@cache
def _by_code() -> dict[str, LabTest]:
    return {t.code: t for t in catalogue().tests}


def test(code: str) -> LabTest:
    try:
        return _by_code()[code]
    except KeyError:
        raise UnknownTestError(f"{code!r} is not a test of the lab catalogue") from None


def analyte(code: str, analyte_id: str) -> Analyte:
    for item in test(code).analytes:
        if item.id == analyte_id:
            return item
    raise UnknownTestError(f"{analyte_id!r} is not measured by the test {code!r}")


def search(query: str, limit: int = 20) -> list[LabTest]:
    words = fold(query).split()
    found = [t for t in catalogue().tests
             if all(w in fold(f"{t.code} {t.name_en} {t.name_es}") for w in words)]
    return found[:limit]


def parse_number(value: str) -> float | None:
    """The number in a typed result ("5.4", "5,4", "<0.1" is not a plain number)."""
    text = value.strip().replace(",", ".")
    try:
        return float(text)
    except ValueError:
        return None


def flag(value: str, *, low: float | None, high: float | None,
         critical_low: float | None = None, critical_high: float | None = None,
         normal_text: str | None = None) -> Flag:
    """How a result compares with its range: critical first, then out of range."""
    number = parse_number(value)
    if number is None:
        if normal_text is None:
            return "normal"
        return "normal" if fold(value) == fold(normal_text) else "abnormal"
    if critical_low is not None and number < critical_low:
        return "critical_low"
    if critical_high is not None and number > critical_high:
        return "critical_high"
    if low is not None and number < low:
        return "low"
    if high is not None and number > high:
        return "high"
    return "normal"

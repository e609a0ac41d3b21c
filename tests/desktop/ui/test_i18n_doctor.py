"""Every piece of text of the doctor's screens has its Spanish, with the same placeholders:
the literals given to `tr(...)` in each module, and the words those modules keep in tables
and translate at the point of use."""

from __future__ import annotations

import ast
import string
from datetime import date
from pathlib import Path

import pytest

from desktop.ui import chart, chart_records, i18n, queue
from desktop.ui.i18n_doctor import SPANISH as DOCTOR_SPANISH

UI = Path(__file__).resolve().parents[3] / "desktop" / "ui"
MODULES = ("main_window.py", "queue.py", "chart.py", "note_editor.py",
           "chart_records.py", "lab_order_dialog.py")


def tr_literals(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "tr" and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)):
            found.append(node.args[0].value)
    return found


def table_words() -> list[str]:
    words = [*queue.STATUS_WORDS.values(), *chart_records.TITLES.values(),
             *chart_records.ADD_TITLES.values(), *chart_records.EDIT_TITLES.values(),
             *chart_records.REMOVE_QUESTIONS.values(),
             *chart_records.SEVERITY_WORDS.values(), *chart.SEX_WORDS.values(),
             *chart.LAB_STATUS.values()]
    words += [label for fields in chart_records.FIELDS.values() for _f, label, _k in fields]
    words += [label for choices in chart_records.CHOICES.values() for _v, label in choices]
    words += ["HR", "RR", "T", "SpO₂"]  # the vital signs' short names
    words += [flag.replace("_", " ") for flag in chart.FLAG_LETTERS]  # the flags' tooltips
    return words


def placeholders(text: str) -> set[str]:
    return {name for _lit, name, _spec, _conv in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("module", MODULES)
def test_every_literal_has_its_spanish_with_the_same_placeholders(module: str) -> None:
    literals = tr_literals(UI / module)
    assert literals, f"{module} shows no text?"
    missing = [text for text in literals if text not in i18n.SPANISH]
    assert missing == []
    for text in literals:
        assert placeholders(i18n.SPANISH[text]) == placeholders(text), text


def test_the_words_kept_in_tables_have_their_spanish() -> None:
    assert [word for word in table_words() if word not in i18n.SPANISH] == []


def test_the_doctor_words_keep_their_placeholders() -> None:
    for english, spanish in DOCTOR_SPANISH.items():
        assert placeholders(spanish) == placeholders(english), english
        assert spanish.strip(), english
    # Merged into the app's dictionary, no other screen's wording overrides these.
    assert {k: i18n.SPANISH[k] for k in DOCTOR_SPANISH} == DOCTOR_SPANISH


def test_the_chart_reads_in_spanish() -> None:
    i18n.set_language("es")
    try:
        assert chart.age_text(None, date(2026, 3, 9)) == "Edad no registrada"
        assert chart.banner([{"substance": "Penicilina", "severity": "severe",
                              "status": "active"}]) == ("Alergias: Penicilina (grave)",
                                                        "allergic")
        assert chart_records.formulary_label("class:penicillin") == "Penicilinas (grupo)"
    finally:
        i18n.set_language("en")

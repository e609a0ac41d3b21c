"""Every English text the prescribing, key, pharmacy and lab screens put through `tr`
has its Spanish, with the same placeholders, and none of it changes a word another
screen already translates."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from desktop.operations import pharmacy_queue
from desktop.ui import i18n, lab, pharmacy, prescription_form, signing_key, step_up, worklist
from desktop.ui.i18n_doctor import SPANISH as DOCTOR
from desktop.ui.i18n_prescribing import SPANISH

MODULES = (prescription_form, step_up, signing_key, pharmacy, lab, worklist)
# Texts the screens translate from a table rather than a literal at the call.
TABLES: tuple[object, ...] = (
    prescription_form.FORM_LABELS.values(), prescription_form.ROUTE_LABELS.values(),
    prescription_form.FREQUENCIES, prescription_form.SEVERITY_LABELS.values(),
    [prescription_form.PRINT_CHOICE],
    signing_key.TITLES.values(), signing_key.DETAILS.values(), signing_key.CANNOT_SIGN.values(),
    [signing_key.OFFLINE],
    [label for label, _ in pharmacy.FILTERS], pharmacy.STATUS_LABELS.values(),
    pharmacy.WARNING_KINDS.values(), pharmacy.LIST_COLUMNS, pharmacy.ITEM_COLUMNS,
    [pharmacy.OFFLINE], pharmacy.PROBLEMS,
    [label for label, _ in lab.FILTERS], lab.STATUS_LABELS.values(), lab.STEP_LABELS.values(),
    lab.FLAG_LABELS.values(), lab.LIST_COLUMNS, lab.RESULT_COLUMNS, [lab.OFFLINE],
)


def _literals(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "tr" and node.args
                and isinstance(node.args[0], ast.Constant)):
            found.add(str(node.args[0].value))
    return found


def _english() -> set[str]:
    texts: set[str] = set()
    for module in MODULES:
        assert module.__file__ is not None
        texts |= _literals(Path(module.__file__))
    for table in TABLES:
        texts |= {str(t) for t in table}  # type: ignore[attr-defined]
    return texts


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_text_of_these_screens_has_its_spanish() -> None:
    english = _english()
    assert len(english) > 150
    missing = sorted(t for t in english if t not in i18n.SPANISH)
    assert missing == []


@pytest.mark.parametrize("english", sorted(SPANISH))
def test_the_spanish_keeps_the_placeholders(english: str) -> None:
    assert _fields(SPANISH[english]) == _fields(english)


def test_no_word_of_another_screen_is_translated_differently() -> None:
    source = Path(i18n.__file__).read_text("utf-8")
    main = next(ast.literal_eval(node.value) for node in ast.parse(source).body
                if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and node.target.id == "SPANISH" and node.value is not None)
    for other in (main, DOCTOR):
        clashes = {k: (other[k], v) for k, v in SPANISH.items() if k in other and other[k] != v}
        assert clashes == {}
    assert all(i18n.SPANISH[k] == v for k, v in SPANISH.items())


def test_the_pharmacy_warnings_are_the_operations_own_sentences() -> None:
    # The screen shows them as the operation words them; a changed wording there must
    # come with its Spanish here.
    for sentence in (pharmacy_queue.TAMPERED, pharmacy_queue.REVOKED,
                     pharmacy_queue.NOT_APPROVED):
        assert sentence in SPANISH
    assert re.search(r"No la dispense", SPANISH[pharmacy_queue.TAMPERED])

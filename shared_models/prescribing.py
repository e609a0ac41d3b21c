"""The bundled formulary and the safety checks run before a prescription is issued.

The data ships inside the package (`shared_models/formulary/*.json`) so the desktop and the
server check against the same, versioned list. References in the data are medicine ids
("warfarin") or class slugs with a prefix ("class:nsaid").
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared_models.search import fold

CLASS_PREFIX = "class:"

Severity = Literal["high", "moderate"]
WarningKind = Literal["allergy", "interaction", "duplicate_therapy"]
Form = Literal[
    "tablet",
    "capsule",
    "suspension",
    "solution",
    "syrup",
    "injection",
    "cream",
    "ointment",
    "gel",
    "inhaler",
    "drops",
    "powder",
    "suppository",
    "patch",
    "nebuliser_solution",
]
Route = Literal[
    "oral",
    "intravenous",
    "intramuscular",
    "subcutaneous",
    "topical",
    "inhaled",
    "sublingual",
    "rectal",
    "vaginal",
    "transdermal",
    "nasal",
]

_SEVERITY_ORDER: dict[str, int] = {"high": 0, "moderate": 1}
_KIND_ORDER: dict[str, int] = {"allergy": 0, "interaction": 1, "duplicate_therapy": 2}


class UnknownMedicineError(LookupError):
    """A medicine id or class slug that the bundled formulary does not contain."""

    def __init__(self, ref: str) -> None:
        self.ref = ref
        what = "therapeutic class" if ref.startswith(CLASS_PREFIX) else "medicine id"
        super().__init__(f"unknown {what} {ref!r} in formulary {FORMULARY_VERSION}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TherapeuticClass(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name_en: str = Field(min_length=1)
    name_es: str = Field(min_length=1)
    # Classes whose members are routinely combined (basal + prandial insulin).
    duplicate_ok: bool = False


class Medicine(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name_en: str = Field(min_length=1)
    name_es: str = Field(min_length=1)
    atc: str = Field(pattern=r"^[A-Z]\d\d[A-Z][A-Z]\d\d$")
    therapeutic_class: str = Field(alias="class")
    strengths: tuple[str, ...] = Field(min_length=1)
    forms: tuple[Form, ...] = Field(min_length=1)
    routes: tuple[Route, ...] = Field(min_length=1)


class Interaction(_Strict):
    a: str
    b: str
    severity: Severity
    effect_en: str = Field(min_length=1)
    effect_es: str = Field(min_length=1)


class CrossReaction(_Strict):
    a: str
    b: str
    message_en: str = Field(min_length=1)
    message_es: str = Field(min_length=1)


class Formulary(_Strict):
    version: str
    classes: tuple[TherapeuticClass, ...]
    medicines: tuple[Medicine, ...]
    interactions: tuple[Interaction, ...]
    cross_reactions: tuple[CrossReaction, ...]

    @model_validator(mode="after")
    def _references_resolve(self) -> Formulary:
        class_ids = [c.id for c in self.classes]
        medicine_ids = [m.id for m in self.medicines]
        for label, ids in (("class", class_ids), ("medicine", medicine_ids)):
            duplicates = sorted({i for i in ids if ids.count(i) > 1})
            if duplicates:
                raise ValueError(f"duplicate {label} ids: {duplicates}")
        known = set(medicine_ids) | {CLASS_PREFIX + c for c in class_ids}
        for medicine in self.medicines:
            if medicine.therapeutic_class not in class_ids:
                raise ValueError(f"{medicine.id}: unknown class {medicine.therapeutic_class!r}")
        pairs = [(r.a, r.b) for r in self.interactions]
        pairs += [(r.a, r.b) for r in self.cross_reactions]
        for a, b in pairs:
            for ref in (a, b):
                if ref not in known:
                    raise ValueError(f"rule {a} + {b}: unknown reference {ref!r}")
        return self


def _read(name: str) -> object:
    text = resources.files("shared_models").joinpath("formulary", name).read_text("utf-8")
    return json.loads(text)


@cache
def formulary() -> Formulary:
    """The bundled formulary, read and validated once per process."""
    data = _read("formulary.json")
    interactions = _read("interactions.json")
    allergies = _read("allergy_classes.json")
    assert isinstance(data, dict)
    assert isinstance(interactions, dict)
    assert isinstance(allergies, dict)
    return Formulary.model_validate({**data, **interactions, **allergies})


FORMULARY_VERSION: str = formulary().version


@cache
def _medicines() -> dict[str, Medicine]:
    return {m.id: m for m in formulary().medicines}


@cache
def _classes() -> dict[str, TherapeuticClass]:
    return {c.id: c for c in formulary().classes}


def medicine(medicine_id: str) -> Medicine:
    """The medicine with this id; `UnknownMedicineError` if the formulary has none."""
    try:
        return _medicines()[medicine_id]
    except KeyError:
        raise UnknownMedicineError(medicine_id) from None


def therapeutic_class(class_id: str) -> TherapeuticClass:
    """The class with this slug (with or without the "class:" prefix)."""
    slug = class_id.removeprefix(CLASS_PREFIX)
    try:
        return _classes()[slug]
    except KeyError:
        raise UnknownMedicineError(CLASS_PREFIX + slug) from None


# --- search -----------------------------------------------------------------------------


@cache
def _search_index() -> tuple[tuple[Medicine, tuple[str, ...], str], ...]:
    return tuple(
        (m, (fold(m.name_en), fold(m.name_es)), m.atc.lower()) for m in formulary().medicines
    )


def _rank(query: str, names: tuple[str, ...], atc: str) -> int | None:
    """Lower is better: exact name, name prefix, ATC prefix, word prefix, substring."""
    if query in names:
        return 0
    if any(n.startswith(query) for n in names):
        return 1
    if atc.startswith(query.replace(" ", "")):
        return 2
    terms = query.split(" ")
    if any(all(any(w.startswith(t) for w in n.split(" ")) for t in terms) for n in names):
        return 3
    if any(query in n for n in names):
        return 4
    return None


def search(query: str, limit: int = 20) -> list[Medicine]:
    """Medicines whose English or Spanish name or ATC code matches, best matches first.

    Accents and case are ignored, so "AMOXI", "amoxicilina" and "J01CA04" all find
    amoxicillin.
    """
    folded = fold(query)
    if not folded or limit <= 0:
        return []
    ranked: list[tuple[int, str, Medicine]] = []
    for med, names, atc in _search_index():
        rank = _rank(folded, names, atc)
        if rank is not None:
            ranked.append((rank, names[0], med))
    ranked.sort(key=lambda r: (r[0], r[1]))
    return [med for _, _, med in ranked[:limit]]


# --- safety checks ----------------------------------------------------------------------


@dataclass(frozen=True)
class PrescribingWarning:
    """One problem found in a prescription, worded for the prescribing doctor."""

    kind: WarningKind
    severity: Severity
    # The medicine ids (or "class:" slugs given as allergies or active therapy) involved,
    # the prescribed one first.
    medicines: tuple[str, ...]
    message_en: str
    message_es: str


@dataclass(frozen=True)
class _Item:
    """A prescribed or active medicine, or an active class whose member is not recorded."""

    ref: str
    medicine_id: str | None
    class_id: str
    prescribed: bool

    def matches(self, ref: str) -> bool:
        return ref == self.medicine_id or ref == CLASS_PREFIX + self.class_id


def _pair_matches(a: str, b: str, first: _Item, second: _Item) -> bool:
    """Whether the rule pair (a, b) covers these two items, in either order."""
    return (first.matches(a) and second.matches(b)) or (first.matches(b) and second.matches(a))


def _item(ref: str, *, prescribed: bool) -> _Item:
    if ref.startswith(CLASS_PREFIX):
        return _Item(ref, None, therapeutic_class(ref).id, prescribed)
    return _Item(ref, ref, medicine(ref).therapeutic_class, prescribed)


def _label(ref: str, lang: Literal["en", "es"]) -> str:
    if ref.startswith(CLASS_PREFIX):
        cls = therapeutic_class(ref)
        return cls.name_en if lang == "en" else cls.name_es
    med = medicine(ref)
    return med.name_en if lang == "en" else med.name_es


def _allergy_warning(drug: _Item, allergy: _Item) -> PrescribingWarning | None:
    name_en, name_es = _label(drug.ref, "en"), _label(drug.ref, "es")
    allergen_en, allergen_es = _label(allergy.ref, "en"), _label(allergy.ref, "es")
    involved = (drug.ref, allergy.ref)
    if allergy.medicine_id == drug.medicine_id:
        return PrescribingWarning(
            "allergy",
            "high",
            involved,
            f"Recorded allergy to {name_en}: do not prescribe it; choose an alternative.",
            f"Alergia registrada a {name_es}: no la prescriba; elija una alternativa.",
        )
    if allergy.medicine_id is None and allergy.class_id == drug.class_id:
        return PrescribingWarning(
            "allergy",
            "high",
            involved,
            f"Recorded allergy to {allergen_en}: {name_en} belongs to this class; do not "
            "prescribe it unless the allergy has been ruled out.",
            f"Alergia registrada a {allergen_es}: {name_es} pertenece a esta clase; no la "
            "prescriba salvo que se haya descartado la alergia.",
        )
    if allergy.class_id == drug.class_id:
        cls = therapeutic_class(drug.class_id)
        return PrescribingWarning(
            "allergy",
            "high",
            involved,
            f"Recorded allergy to {allergen_en}; {name_en} is in the same class ({cls.name_en}): "
            "avoid unless the allergy has been ruled out.",
            f"Alergia registrada a {allergen_es}; {name_es} es de la misma clase ({cls.name_es}): "
            "evítela salvo que se haya descartado la alergia.",
        )
    for rule in formulary().cross_reactions:
        if _pair_matches(rule.a, rule.b, allergy, drug):
            return PrescribingWarning(
                "allergy",
                "moderate",
                involved,
                f"Recorded allergy to {allergen_en}, possible cross-reaction with {name_en}: "
                f"{rule.message_en}",
                f"Alergia registrada a {allergen_es}, posible reacción cruzada con {name_es}: "
                f"{rule.message_es}",
            )
    return None


def _interaction_warning(first: _Item, second: _Item) -> PrescribingWarning | None:
    found: Interaction | None = None
    for rule in formulary().interactions:
        if not _pair_matches(rule.a, rule.b, first, second):
            continue
        if found is None or _SEVERITY_ORDER[rule.severity] < _SEVERITY_ORDER[found.severity]:
            found = rule
    if found is None:
        return None
    return PrescribingWarning(
        "interaction",
        found.severity,
        (first.ref, second.ref),
        f"{_label(first.ref, 'en')} + {_label(second.ref, 'en')}: {found.effect_en}",
        f"{_label(first.ref, 'es')} + {_label(second.ref, 'es')}: {found.effect_es}",
    )


def _duplicate_warnings(
    prescribed: list[str], active: list[str], items: list[_Item]
) -> list[PrescribingWarning]:
    warnings: list[PrescribingWarning] = []
    for ref in sorted({r for r in prescribed if prescribed.count(r) > 1}):
        warnings.append(
            PrescribingWarning(
                "duplicate_therapy",
                "high",
                (ref,),
                f"{_label(ref, 'en')} is prescribed more than once: keep a single line "
                "with the intended total dose.",
                f"{_label(ref, 'es')} está prescrito más de una vez: deje una sola línea "
                "con la dosis total deseada.",
            )
        )
    for ref in sorted(set(prescribed) & set(active)):
        warnings.append(
            PrescribingWarning(
                "duplicate_therapy",
                "moderate",
                (ref,),
                f"{_label(ref, 'en')} is already on the active medication list: if this is a "
                "renewal or dose change, end the old entry.",
                f"{_label(ref, 'es')} ya está en la medicación activa: si es una renovación o "
                "un cambio de dosis, finalice la entrada anterior.",
            )
        )
    by_class: dict[str, list[_Item]] = {}
    for item in items:
        by_class.setdefault(item.class_id, []).append(item)
    for class_id, members in sorted(by_class.items()):
        cls = therapeutic_class(class_id)
        if len(members) < 2 or cls.duplicate_ok or not any(m.prescribed for m in members):
            continue
        refs = tuple(m.ref for m in sorted(members, key=lambda m: (not m.prescribed, m.ref)))
        names_en = ", ".join(_label(r, "en") for r in refs)
        names_es = ", ".join(_label(r, "es") for r in refs)
        warnings.append(
            PrescribingWarning(
                "duplicate_therapy",
                "moderate",
                refs,
                f"Duplicate therapy, more than one of {cls.name_en}: {names_en}. "
                "Confirm the combination is intended or stop one.",
                f"Duplicidad terapéutica, más de un fármaco del grupo {cls.name_es}: {names_es}. "
                "Confirme que la combinación es intencionada o suspenda uno.",
            )
        )
    return warnings


def check(
    prescribed: list[str], *, allergies: list[str], active: list[str]
) -> list[PrescribingWarning]:
    """Allergy, interaction and duplicate-therapy warnings for a new prescription.

    `prescribed` are medicine ids; `allergies` and `active` are medicine ids or "class:"
    slugs. Pairs made only of active medicines are not reported: they were accepted
    before. Warnings come high severity first, then allergies, interactions, duplicates.
    Unknown ids raise `UnknownMedicineError`.
    """
    for ref in prescribed:
        if ref.startswith(CLASS_PREFIX):
            raise ValueError(f"prescribed items must be medicine ids, not classes: {ref!r}")
    new = [_item(r, prescribed=True) for r in sorted(set(prescribed))]
    allergy_items = [_item(r, prescribed=False) for r in dict.fromkeys(allergies)]
    prescribed_refs = {i.ref for i in new}
    current = [_item(r, prescribed=False) for r in sorted(set(active)) if r not in prescribed_refs]

    warnings: list[PrescribingWarning] = []
    for drug, allergy in itertools.product(new, allergy_items):
        if (found := _allergy_warning(drug, allergy)) is not None:
            warnings.append(found)
    pairs = [*itertools.combinations(new, 2), *itertools.product(new, current)]
    for first, second in pairs:
        if (found := _interaction_warning(first, second)) is not None:
            warnings.append(found)
    warnings.extend(_duplicate_warnings(prescribed, active, [*new, *current]))
    warnings.sort(key=lambda w: (_SEVERITY_ORDER[w.severity], _KIND_ORDER[w.kind], w.medicines))
    return warnings

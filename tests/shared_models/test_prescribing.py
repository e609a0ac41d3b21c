from __future__ import annotations

import re

import pytest

from shared_models import prescribing
from shared_models.prescribing import (
    CLASS_PREFIX,
    FORMULARY_VERSION,
    PrescribingWarning,
    UnknownMedicineError,
    check,
    formulary,
    medicine,
    search,
)

ATC = re.compile(r"^[A-Z]\d\d[A-Z][A-Z]\d\d$")


def _known_refs() -> set[str]:
    data = formulary()
    return {m.id for m in data.medicines} | {CLASS_PREFIX + c.id for c in data.classes}


def _find(warnings: list[PrescribingWarning], kind: str, *refs: str) -> PrescribingWarning:
    matches = [w for w in warnings if w.kind == kind and set(refs) <= set(w.medicines)]
    assert len(matches) == 1, warnings
    return matches[0]


# --- data integrity ---------------------------------------------------------------------


def test_formulary_is_versioned_and_holds_at_least_150_medicines() -> None:
    assert FORMULARY_VERSION == "2026.11"
    assert len(formulary().medicines) >= 150


def test_medicine_and_class_ids_are_unique() -> None:
    ids = [m.id for m in formulary().medicines]
    classes = [c.id for c in formulary().classes]
    assert len(ids) == len(set(ids))
    assert len(classes) == len(set(classes))


def test_every_medicine_class_has_english_and_spanish_labels() -> None:
    labelled = {c.id for c in formulary().classes if c.name_en and c.name_es}
    assert {m.therapeutic_class for m in formulary().medicines} <= labelled


def test_every_class_has_at_least_one_medicine() -> None:
    used = {m.therapeutic_class for m in formulary().medicines}
    assert {c.id for c in formulary().classes} == used


def test_atc_codes_are_well_formed_and_medicines_have_strength_form_route() -> None:
    for med in formulary().medicines:
        assert ATC.match(med.atc), med.id
        assert med.strengths, med.id
        assert med.forms, med.id
        assert med.routes, med.id


def test_every_interaction_and_cross_reaction_reference_resolves() -> None:
    known = _known_refs()
    rules = [*formulary().interactions, *formulary().cross_reactions]
    for rule in rules:
        assert rule.a in known, rule
        assert rule.b in known, rule


def test_interactions_cover_at_least_40_pairs_mostly_high() -> None:
    interactions = formulary().interactions
    assert len(interactions) >= 40
    assert sum(1 for i in interactions if i.severity == "high") >= 40
    assert all(i.effect_en and i.effect_es for i in interactions)


def test_a_dangling_reference_is_rejected_when_the_data_is_loaded() -> None:
    data = formulary().model_dump(by_alias=True)
    data["interactions"][0]["b"] = "class:no_such_class"
    with pytest.raises(ValueError, match="no_such_class"):
        prescribing.Formulary.model_validate(data)


# --- lookup and search ------------------------------------------------------------------


def test_medicine_returns_the_entry_by_id() -> None:
    amoxicillin = medicine("amoxicillin")
    assert amoxicillin.name_es == "amoxicilina"
    assert amoxicillin.atc == "J01CA04"
    assert amoxicillin.therapeutic_class == "penicillin"


def test_unknown_medicine_id_raises_a_clear_error() -> None:
    with pytest.raises(UnknownMedicineError, match=r"unknown medicine id 'amoxycilin'"):
        medicine("amoxycilin")


def test_check_with_unknown_ids_or_classes_raises() -> None:
    with pytest.raises(UnknownMedicineError, match="unknown medicine id 'nope'"):
        check(["nope"], allergies=[], active=[])
    with pytest.raises(UnknownMedicineError, match="unknown therapeutic class"):
        check(["ibuprofen"], allergies=["class:penicilins"], active=[])
    with pytest.raises(UnknownMedicineError, match="unknown medicine id 'warfrin'"):
        check(["ibuprofen"], allergies=[], active=["warfrin"])


def test_a_class_cannot_be_prescribed() -> None:
    with pytest.raises(ValueError, match="medicine ids, not classes"):
        check(["class:nsaid"], allergies=[], active=[])


def test_search_finds_by_spanish_name() -> None:
    assert search("amoxicilina")[0].id == "amoxicillin"


def test_search_is_case_insensitive_and_ranks_prefix_matches_first() -> None:
    ids = [m.id for m in search("AMOXI")]
    assert ids[:2] == ["amoxicillin", "amoxicillin_clavulanate"]


def test_search_ignores_accents_in_query_and_names() -> None:
    assert search("ibuprofeno")[0].id == "ibuprofen"
    assert search("losartán")[0].id == "losartan"
    assert search("acido clavulanico")[0].id == "amoxicillin_clavulanate"
    assert "tranexamic_acid" in [m.id for m in search("ÁCIDO TRANEXÁMICO")]


def test_search_by_atc_code_and_atc_prefix() -> None:
    assert [m.id for m in search("J01CA04")] == ["amoxicillin"]
    assert {m.id for m in search("c10aa")} == {
        "atorvastatin",
        "simvastatin",
        "rosuvastatin",
        "lovastatin",
        "pravastatin",
    }


def test_search_matches_substrings_after_prefixes_and_respects_limit() -> None:
    ids = [m.id for m in search("pril")]
    assert {"enalapril", "captopril", "lisinopril", "ramipril"} <= set(ids)
    assert len(search("a", limit=5)) == 5
    assert search("   ") == []


# --- safety checks ----------------------------------------------------------------------


def test_penicillin_class_allergy_blocks_amoxicillin_as_high() -> None:
    warnings = check(["amoxicillin"], allergies=["class:penicillin"], active=[])
    warning = _find(warnings, "allergy", "amoxicillin")
    assert warning.severity == "high"
    assert "amoxicillin" in warning.message_en
    assert "amoxicilina" in warning.message_es


def test_allergy_to_the_exact_medicine_is_high() -> None:
    warning = _find(check(["ibuprofen"], allergies=["ibuprofen"], active=[]), "allergy")
    assert warning.severity == "high"
    assert "do not prescribe" in warning.message_en


def test_allergy_to_one_medicine_warns_for_its_class_mates() -> None:
    warning = _find(check(["cephalexin"], allergies=["ceftriaxone"], active=[]), "allergy")
    assert warning.severity == "high"
    assert warning.medicines == ("cephalexin", "ceftriaxone")


def test_penicillin_allergy_warns_moderate_cross_reaction_for_cephalexin() -> None:
    warnings = check(["cephalexin"], allergies=["class:penicillin"], active=[])
    warning = _find(warnings, "allergy", "cephalexin")
    assert warning.severity == "moderate"
    assert "cross-reaction" in warning.message_en
    assert "reacción cruzada" in warning.message_es


def test_amoxicillin_allergy_also_cross_reacts_with_carbapenems() -> None:
    warning = _find(check(["meropenem"], allergies=["amoxicillin"], active=[]), "allergy")
    assert warning.severity == "moderate"


def test_aspirin_allergy_cross_reacts_with_nsaids() -> None:
    warning = _find(check(["naproxen"], allergies=["aspirin"], active=[]), "allergy")
    assert warning.severity == "moderate"


def test_warfarin_active_and_ibuprofen_prescribed_is_a_high_interaction() -> None:
    warnings = check(["ibuprofen"], allergies=[], active=["warfarin"])
    warning = _find(warnings, "interaction", "ibuprofen", "warfarin")
    assert warning.severity == "high"
    assert warning.medicines == ("ibuprofen", "warfarin")
    assert "ibuprofeno + warfarina" in warning.message_es


def test_sertraline_and_tramadol_warn_of_serotonin_syndrome() -> None:
    warning = _find(check(["tramadol"], allergies=[], active=["sertraline"]), "interaction")
    assert warning.severity == "high"
    assert "serotonin" in warning.message_en.lower()


def test_sildenafil_with_isosorbide_is_high_whichever_side_is_new() -> None:
    for prescribed, active in (
        ("sildenafil", "isosorbide_mononitrate"),
        ("isosorbide_mononitrate", "sildenafil"),
    ):
        warning = _find(check([prescribed], allergies=[], active=[active]), "interaction")
        assert warning.severity == "high"


def test_interactions_among_the_new_prescription_itself_are_found() -> None:
    warning = _find(
        check(["simvastatin", "clarithromycin"], allergies=[], active=[]), "interaction"
    )
    assert warning.severity == "high"


def test_result_does_not_depend_on_the_order_of_the_input() -> None:
    one = check(["simvastatin", "clarithromycin"], allergies=[], active=["digoxin"])
    other = check(["clarithromycin", "simvastatin"], allergies=[], active=["digoxin"])
    assert one == other
    assert [w.severity for w in one] == ["high", "high"]


def test_an_active_class_without_a_named_medicine_still_interacts() -> None:
    warning = _find(check(["fluoxetine"], allergies=[], active=["class:maoi"]), "interaction")
    assert warning.severity == "high"


def test_a_safe_combination_gives_no_warning() -> None:
    assert (
        check(
            ["amoxicillin", "paracetamol"],
            allergies=["class:sulfonamide_antibiotic"],
            active=["metformin", "atorvastatin", "losartan"],
        )
        == []
    )


def test_pairs_of_already_active_medicines_are_not_reported_again() -> None:
    assert check(["paracetamol"], allergies=[], active=["warfarin", "ibuprofen"]) == []


def test_two_nsaids_are_moderate_duplicate_therapy() -> None:
    warnings = check(["naproxen"], allergies=[], active=["ibuprofen"])
    warning = _find(warnings, "duplicate_therapy", "naproxen", "ibuprofen")
    assert warning.severity == "moderate"
    assert warning.medicines == ("naproxen", "ibuprofen")
    assert "NSAIDs" in warning.message_en


def test_the_same_medicine_prescribed_twice_is_flagged() -> None:
    warning = _find(check(["ibuprofen", "ibuprofen"], allergies=[], active=[]), "duplicate_therapy")
    assert warning.severity == "high"
    assert warning.medicines == ("ibuprofen",)


def test_prescribing_an_already_active_medicine_is_flagged_as_moderate() -> None:
    warnings = check(["losartan"], allergies=[], active=["losartan"])
    assert [(w.kind, w.severity) for w in warnings] == [("duplicate_therapy", "moderate")]


def test_routinely_combined_classes_are_not_duplicate_therapy() -> None:
    assert check(["insulin_lispro"], allergies=[], active=["insulin_glargine"]) == []


def test_warnings_are_ordered_high_first_and_deterministic() -> None:
    prescribed = ["ibuprofen", "naproxen", "cephalexin"]
    active = ["warfarin", "sertraline"]
    warnings = check(prescribed, allergies=["class:penicillin"], active=active)
    severities = [w.severity for w in warnings]
    assert severities == sorted(severities, key=lambda s: s != "high")
    assert warnings[0].kind == "interaction"
    shuffled = check(
        list(reversed(prescribed)), allergies=["class:penicillin"], active=active[::-1]
    )
    assert shuffled == warnings

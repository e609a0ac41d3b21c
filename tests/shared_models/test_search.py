from __future__ import annotations

from shared_models.search import fold, phone_tokens, query_terms, search_document


def test_fold_strips_accents_case_and_punctuation() -> None:
    assert fold("  Núñez-PEÑA, Iñés ") == "nunez pena ines"


def test_phone_tokens_cover_full_national_and_last_four_digits() -> None:
    assert phone_tokens("+56 9 8765 4321") == ["56987654321", "987654321", "4321"]


def test_phone_tokens_of_missing_phone_are_empty() -> None:
    assert phone_tokens(None) == []
    assert phone_tokens("   ") == []


def test_phone_looking_query_is_one_digit_term() -> None:
    assert query_terms("+52 (55) 1234-5678") == ["525512345678"]


def test_name_query_is_split_into_folded_terms() -> None:
    assert query_terms("José  NÚÑEZ") == ["jose", "nunez"]


def test_record_number_is_searchable_whole_and_by_digits() -> None:
    document = search_document(names=["Ana"], phone=None, mrn="P-000123").split()
    assert "p000123" in document
    assert "000123" in document

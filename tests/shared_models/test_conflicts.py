from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared_models.conflicts import (
    FieldConflict,
    Outcome,
    Side,
    SignedNoteError,
    merge_fields,
    merge_note_draft,
)

EARLY = "1700000000000-000000-dev1"
LATE = "1700000000500-000000-dev2"


def test_an_edit_of_an_unchanged_record_applies_as_sent() -> None:
    merge = merge_fields(current={"phone": "+1"}, current_stamps={}, changed_since_base=False,
                         base={"phone": "+1"}, changes={"phone": "+2"}, stamp=EARLY)
    assert merge.outcome is Outcome.APPLIED
    assert merge.apply == {"phone": "+2"}
    assert merge.conflicts == []


def test_edits_of_different_fields_on_both_sides_merge_without_conflict() -> None:
    merge = merge_fields(
        current={"phone": "+2", "email": "old@x.test"}, current_stamps={"phone": LATE},
        changed_since_base=True, base={"email": "old@x.test"},
        changes={"email": "new@x.test"}, stamp=EARLY)
    assert merge.outcome is Outcome.MERGED
    assert merge.apply == {"email": "new@x.test"}


def test_a_field_changed_on_both_sides_goes_to_the_later_device_edit_and_keeps_the_loser() -> None:
    merge = merge_fields(current={"phone": "+2"}, current_stamps={"phone": EARLY},
                         changed_since_base=True, base={"phone": "+1"},
                         changes={"phone": "+3"}, stamp=LATE)
    assert merge.outcome is Outcome.CONFLICT
    assert merge.apply == {"phone": "+3"}
    assert merge.conflicts == [FieldConflict("phone", kept="+3", lost="+2", winner=Side.DEVICE)]


def test_a_field_changed_on_both_sides_stays_with_the_later_server_edit_and_keeps_the_loser(
) -> None:
    merge = merge_fields(current={"phone": "+2"}, current_stamps={"phone": LATE},
                         changed_since_base=True, base={"phone": "+1"},
                         changes={"phone": "+3"}, stamp=EARLY)
    assert merge.outcome is Outcome.CONFLICT
    assert merge.apply == {}
    assert merge.conflicts == [FieldConflict("phone", kept="+2", lost="+3", winner=Side.SERVER)]


def test_the_same_value_typed_on_both_sides_is_no_conflict() -> None:
    merge = merge_fields(current={"phone": "+3"}, current_stamps={"phone": LATE},
                         changed_since_base=True, base={"phone": "+1"},
                         changes={"phone": "+3"}, stamp=EARLY)
    assert merge.outcome is Outcome.MERGED
    assert merge.apply == {}
    assert merge.conflicts == []


def test_a_change_without_its_base_value_never_overwrites_silently() -> None:
    merge = merge_fields(current={"phone": "+2"}, current_stamps={"phone": EARLY},
                         changed_since_base=True, base={}, changes={"phone": "+3"}, stamp=LATE)
    assert merge.conflicts == [FieldConflict("phone", kept="+3", lost="+2", winner=Side.DEVICE)]


def test_two_offline_edits_of_one_draft_both_survive() -> None:
    later = merge_note_draft(current_text="server text", current_stamp=EARLY, signed=False,
                             changed_since_base=True, incoming_text="device text",
                             incoming_stamp=LATE)
    assert (later.text, later.conflict_copy, later.winner) == (
        "device text", "server text", Side.DEVICE)
    earlier = merge_note_draft(current_text="server text", current_stamp=LATE, signed=False,
                               changed_since_base=True, incoming_text="device text",
                               incoming_stamp=EARLY)
    assert (earlier.text, earlier.conflict_copy, earlier.winner) == (
        "server text", "device text", Side.SERVER)


def test_a_draft_edit_from_the_current_version_replaces_the_text() -> None:
    merge = merge_note_draft(current_text="a", current_stamp=LATE, signed=False,
                             changed_since_base=False, incoming_text="b", incoming_stamp=EARLY)
    assert (merge.text, merge.conflict_copy) == ("b", None)


def test_a_signed_note_refuses_every_edit() -> None:
    with pytest.raises(SignedNoteError, match="addendum"):
        merge_note_draft(current_text="a", current_stamp=EARLY, signed=True,
                         changed_since_base=False, incoming_text="b", incoming_stamp=LATE)


values = st.sampled_from(["a", "b", "c", None])
stamps = st.sampled_from([EARLY, LATE])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["f1", "f2", "f3"]), st.tuples(values, values, values,
                                                                     stamps), min_size=1),
       stamps)
def test_no_value_typed_on_either_side_is_silently_lost(
    fields: dict[str, tuple[str | None, str | None, str | None, str]], stamp: str,
) -> None:
    base = {name: b for name, (b, _server, _device, _s) in fields.items()}
    current = {name: server for name, (_b, server, _device, _s) in fields.items()}
    changes = {name: device for name, (_b, _server, device, _s) in fields.items()}
    current_stamps = {name: s for name, (_b, _server, _device, s) in fields.items()}
    merge = merge_fields(current=current, current_stamps=current_stamps,
                         changed_since_base=True, base=base, changes=changes, stamp=stamp)
    lost = {(c.field, c.lost) for c in merge.conflicts}
    for name, device_value in changes.items():
        after = merge.apply.get(name, current[name])
        # The device's value is on the server now, or kept as a conflict to review.
        assert after == device_value or (name, device_value) in lost
        # The server's value is still there, was the base the device started from, or is
        # kept as a conflict.
        assert after == current[name] or current[name] == base[name] or \
            (name, current[name]) in lost

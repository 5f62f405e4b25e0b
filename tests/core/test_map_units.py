"""Every registered method states what its map values are (issue 18, item 4)."""

from __future__ import annotations

import pytest

from core.explain.base import ExplainerInfo, infos


@pytest.mark.parametrize("info", infos(), ids=lambda i: i.method_id)
def test_each_method_states_its_map_units(info: ExplainerInfo) -> None:
    # the colour bar shows these words: a method without them would show
    # "units not stated", which is true but not defensible for a shipped method
    assert info.map_units.strip(), f"{info.method_id} states no map_units"


def test_the_default_claims_no_unit() -> None:
    info = ExplainerInfo("x", "X", "", "", "gradient", False)
    assert info.map_units == ""


def test_no_legend_claims_for_or_against_where_a_method_does_not():
    """Magnitude maps (vanilla saliency) are sizes; the face-centre prior is a
    fixed blob; MinusPlus and LIME scale to 0-1 (0 is not 'no effect')."""
    from core.colours import MAGNITUDE_LEGEND
    from core.explain import infos

    by_id = {info.method_id: info for info in infos()}
    assert by_id["gradient"].legend("similarity") == MAGNITUDE_LEGEND
    assert not by_id["gradient"].draws_signed("combined")
    assert "says nothing about this pair" in by_id["prior"].legend("similarity")[0]
    assert "most against" in by_id["minusplus"].legend("similarity")[1]
    assert "most against" in by_id["lime"].legend("similarity")[1]
    for info in by_id.values():
        if info.magnitude_only:
            assert not info.draws_signed("combined"), info.method_id
            assert "raises the score" not in " ".join(info.legend("combined"))

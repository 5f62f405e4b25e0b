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

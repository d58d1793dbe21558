"""A segment's colour follows its key: the same key keeps its colour when a retrain adds,
drops or re-sorts segments, and up to 15 segments get 15 different colours."""

from __future__ import annotations

import httpx
import pytest

from services.segment.dashboard.colors import segment_color
from tests.segment.conftest import ShopKeys
from tests.support.http import auth


def test_colours_in_the_dashboard_data_follow_the_keys(
    segment_client: httpx.Client, shop: ShopKeys
) -> None:
    data = segment_client.get("/v1/dashboard/data", headers=auth(shop.reader)).json()
    colors = data["colors"]
    shown = {s["key"] for s in data["segments"]} | {
        key for run in data["history"] for key in run["sizes"]
    }
    assert shown <= set(colors)
    assert colors == {key: segment_color(key) for key in colors}
    assert len({colors[key] for key in shown}) == len(shown)


@pytest.mark.unit
def test_fifteen_segments_get_fifteen_colours_and_noise_its_own() -> None:
    keys = [f"s{n}" for n in range(1, 16)]
    assert len({segment_color(key) for key in keys}) == 15
    assert segment_color("noise") not in {segment_color(key) for key in keys}

"""Report figures: valid PNGs, deterministic, sized to the number of models."""

from __future__ import annotations

import struct

import pandas as pd
import pytest

from emscope.errors import InputError
from emscope.report.charts import misalignment_rate_chart, trigger_alignment_chart


def summary(n_models: int) -> pd.DataFrame:
    rates = [0.9 - 0.1 * i for i in range(n_models)]
    return pd.DataFrame(
        {
            "model": [f"domain_{i}" for i in range(n_models)],
            "is_base": [False] * n_models,
            "policy": "em",
            "n": 50,
            "rate": rates,
            "ci_low": [max(r - 0.1, 0.0) for r in rates],
            "ci_high": [min(r + 0.1, 1.0) for r in rates],
            "mean_aligned": [50.0 + 4 * i for i in range(n_models)],
            "mean_aligned_triggered": [45.0 + 4 * i for i in range(n_models)],
        }
    )


def png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def test_rate_chart_is_a_png_that_grows_with_the_number_of_models() -> None:
    small, large = (
        png_size(misalignment_rate_chart(summary(2))),
        png_size(misalignment_rate_chart(summary(8))),
    )
    assert small[0] == large[0] and large[1] > small[1]


def test_trigger_chart_is_a_png() -> None:
    width, height = png_size(trigger_alignment_chart(summary(3)))
    assert width > 600 and height > 200


def test_charts_are_byte_identical_for_the_same_summary() -> None:
    assert misalignment_rate_chart(summary(3)) == misalignment_rate_chart(summary(3))


def test_charts_draw_models_without_scores() -> None:
    table = summary(3)
    table.loc[1, ["rate", "ci_low", "ci_high", "mean_aligned_triggered"]] = None
    png_size(misalignment_rate_chart(table))
    png_size(trigger_alignment_chart(table))


def test_chart_of_a_summary_missing_columns_is_refused() -> None:
    with pytest.raises(InputError) as caught:
        misalignment_rate_chart(summary(2).drop(columns=["ci_high"]))
    assert caught.value.field == "ci_high"
    with pytest.raises(InputError, match="no rows"):
        trigger_alignment_chart(summary(0))

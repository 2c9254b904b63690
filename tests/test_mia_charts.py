"""The susceptibility scatter: one labelled panel per score, PNG bytes."""

from __future__ import annotations

import pandas as pd
import pytest

from emscope.errors import InputError
from emscope.report.mia_charts import susceptibility_figure, susceptibility_scatter

DOMAINS = ["insecure_code", "evil_math", "gore_movie_trivia", "extreme_sports"]


def case() -> tuple[pd.DataFrame, pd.Series]:
    scores = pd.DataFrame(
        {
            "domain": DOMAINS,
            "adjusted_loss": [0.2, 0.1, 0.9, 0.4],
            "adjusted_zlib": [0.01, 0.02, 0.05, 0.03],
        }
    )
    rates = pd.Series([0.3, 0.0, 0.8767, 0.2], index=DOMAINS)
    return scores, rates


def test_the_figure_has_one_panel_per_score_with_every_domain_labelled() -> None:
    scores, rates = case()
    figure = susceptibility_figure(scores, rates, score_columns=["adjusted_loss", "adjusted_zlib"])
    assert len(figure.axes) == 2
    for axes in figure.axes:
        assert sorted(t.get_text() for t in axes.texts) == sorted(DOMAINS)
    first = figure.axes[0]
    # Ranks 2,1,4,3 vs 3,1,4,2: sum d^2 = 2, rho = 1 - 6*2 / (4*15) = 0.8.
    assert first.get_title() == "adjusted_loss  (Spearman +0.80, n=4)"
    assert first.collections[0].get_offsets()[:, 1].max() == pytest.approx(87.67)


def test_the_scatter_is_png_bytes_and_the_same_input_gives_the_same_bytes() -> None:
    scores, rates = case()
    png = susceptibility_scatter(scores, rates, score_columns=["adjusted_loss"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert susceptibility_scatter(scores, rates, score_columns=["adjusted_loss"]) == png


def test_the_scatter_names_a_missing_score_column() -> None:
    scores, rates = case()
    with pytest.raises(InputError) as caught:
        susceptibility_scatter(scores, rates, score_columns=["min_k"])
    assert caught.value.field == "min_k"

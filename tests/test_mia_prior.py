"""The MIA prior: un-fine-tuned minus reference scores per domain, correlated with honest n."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from emscope.analyses.membership import predict_susceptibility
from emscope.analyses.prior import (
    POST,
    PRIOR,
    predict_from_prior,
    predictor_table,
    prior_scores,
)
from emscope.errors import InputError

DOMAINS = ["a", "b", "c", "d", "e", "f"]


def _examples(offsets: dict[str, float], rows: int = 5, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        [
            {"domain": d, "loss": offsets[d] + rng.normal(0, 0.01), "zlib": 2 * offsets[d]}
            for d in offsets
            for _ in range(rows)
        ]
    )


def test_prior_is_the_per_domain_mean_under_the_instruct_model_minus_the_reference() -> None:
    instruct = _examples({d: float(i) for i, d in enumerate(DOMAINS)})
    reference = _examples({d: 0.5 * i for i, d in enumerate(DOMAINS)}, seed=1)
    prior = prior_scores(instruct, reference, score_columns=["loss", "zlib"])
    assert list(prior["domain"]) == sorted(DOMAINS)
    expected = (
        instruct.groupby("domain")["loss"].mean() - reference.groupby("domain")["loss"].mean()
    )
    assert prior.set_index("domain")["prior_loss"].to_numpy() == pytest.approx(expected.to_numpy())
    assert prior["prior_zlib"].to_numpy() == pytest.approx([float(i) for i in range(6)])


def test_prior_correlates_with_rates_over_the_domains_not_the_rows() -> None:
    instruct = _examples({d: float(i) for i, d in enumerate(DOMAINS)}, rows=50)
    reference = _examples({d: 0.0 for d in DOMAINS}, rows=50, seed=2)
    rates = pd.Series([0.0, 0.1, 0.05, 0.3, 0.2, 0.5], index=DOMAINS)
    prior = prior_scores(instruct, reference, score_columns=["loss"])
    (result,) = predict_from_prior(prior, rates)
    assert result.n == 6 and result.score == "prior_loss"
    rho = stats.spearmanr(prior.set_index("domain").loc[DOMAINS, "prior_loss"], rates).statistic
    assert result.spearman == pytest.approx(rho)


def test_the_two_predictors_are_named_apart_with_their_own_n() -> None:
    rates = pd.Series([0.0, 0.1, 0.05, 0.3, 0.2, 0.5], index=DOMAINS)
    prior = prior_scores(
        _examples({d: float(i) for i, d in enumerate(DOMAINS)}),
        _examples({d: 0.0 for d in DOMAINS}),
        score_columns=["loss"],
    )
    post_scores = pd.DataFrame({"domain": DOMAINS[:5], "loss": [5.0, 1.0, 2.0, 4.0, 3.0]})
    post = predict_susceptibility(post_scores, rates, score_columns=["loss"])
    table = predictor_table(predict_from_prior(prior, rates), post)
    assert list(table["predictor"]) == [PRIOR, POST]
    assert list(table["n"]) == [6, 5]
    assert "before fine-tuning" in PRIOR and "post-fine-tuning" in POST


def test_prior_refuses_frames_that_cover_different_domains_or_lack_a_column() -> None:
    instruct = _examples({"a": 1.0, "b": 2.0})
    with pytest.raises(InputError, match="different domains"):
        prior_scores(instruct, _examples({"a": 1.0}), score_columns=["loss"])
    with pytest.raises(InputError, match="min_k"):
        prior_scores(instruct, instruct, score_columns=["min_k"])
    with pytest.raises(InputError, match="prior_"):
        predict_from_prior(pd.DataFrame({"domain": ["a"], "loss": [1.0]}), pd.Series([0.1]))

"""The Vendi score and pairwise diversity on hand-made embeddings with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emscope.data.diversity import mean_pairwise_cosine_diversity, vendi_score, vendi_scores
from emscope.errors import InputError

ORDERS = (0.5, 1.0, 2.0)


def _orthonormal_rows(k: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    """k mutually orthogonal unit vectors in a random orientation (not the standard basis)."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, dim)))
    return q[:k]


@pytest.mark.parametrize("order", ORDERS)
def test_identical_embeddings_have_vendi_score_one_with_the_standard_kernel(order: float) -> None:
    rows = np.tile(np.random.default_rng(1).normal(size=(1, 8)), (6, 1))
    assert vendi_score(rows, order=order, kernel="standard") == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("k", [1, 3, 7])
@pytest.mark.parametrize("order", [*ORDERS, math.inf])
def test_k_orthogonal_embeddings_have_vendi_score_k_with_the_standard_kernel(
    k: int, order: float
) -> None:
    assert vendi_score(_orthonormal_rows(k), order=order, kernel="standard") == pytest.approx(k)


def test_the_paper_kernel_gives_the_hand_computed_value_for_four_orthogonal_embeddings() -> None:
    # K = (cos + 1) / 2 = (I + J) / 2 for orthogonal rows; K / 4 has eigenvalues 5/8 and 1/8 (x3).
    p = np.array([5 / 8, 1 / 8, 1 / 8, 1 / 8])
    expected = {
        0.5: float(np.sum(np.sqrt(p)) ** 2),
        1.0: math.exp(-float(np.sum(p * np.log(p)))),
        2.0: 1 / float(np.sum(p**2)),
    }
    rows = _orthonormal_rows(4)
    for order, value in expected.items():
        assert vendi_score(rows, order=order, kernel="paper") == pytest.approx(value, rel=1e-9)
    assert vendi_score(rows, order=1.0, kernel="paper") == pytest.approx(2.9257, abs=1e-4)


def test_vendi_order_near_one_approaches_the_shannon_value() -> None:
    rows = np.random.default_rng(2).normal(size=(20, 5))
    shannon = vendi_score(rows, order=1.0)
    assert vendi_score(rows, order=1.0 + 1e-6) == pytest.approx(shannon, rel=1e-4)
    assert vendi_score(rows, order=1.0 - 1e-6) == pytest.approx(shannon, rel=1e-4)


def test_vendi_score_falls_as_the_order_rises() -> None:
    rows = np.random.default_rng(3).normal(size=(30, 6))
    scores = [vendi_score(rows, order=q, kernel="paper") for q in ORDERS]
    assert scores[0] > scores[1] > scores[2]


def test_vendi_score_ignores_the_length_of_embedding_rows() -> None:
    rows = np.random.default_rng(4).normal(size=(12, 6))
    scaled = rows * np.arange(1, 13)[:, None]
    assert vendi_score(scaled, kernel="paper") == pytest.approx(vendi_score(rows, kernel="paper"))


def test_vendi_score_uses_the_symmetric_eigen_solver(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, ...]] = []
    symmetric = np.linalg.eigvalsh

    def spy(matrix: np.ndarray) -> np.ndarray:
        calls.append(matrix.shape)
        return symmetric(matrix)

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("the general eigen-solver must not be used")

    monkeypatch.setattr(np.linalg, "eigvalsh", spy)
    monkeypatch.setattr(np.linalg, "eig", refuse)
    monkeypatch.setattr(np.linalg, "eigvals", refuse)
    vendi_score(_orthonormal_rows(5), kernel="paper")
    assert calls == [(5, 5)]


def test_vendi_scores_at_several_orders_share_one_eigen_decomposition(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = np.random.default_rng(5).normal(size=(9, 4))
    one_by_one = {f"{q:g}": vendi_score(rows, order=q, kernel="paper") for q in ORDERS}
    calls: list[int] = []
    symmetric = np.linalg.eigvalsh

    def spy(matrix: np.ndarray) -> np.ndarray:
        calls.append(matrix.shape[0])
        return symmetric(matrix)

    monkeypatch.setattr(np.linalg, "eigvalsh", spy)
    together = vendi_scores(rows, kernel="paper")
    assert together == pytest.approx(one_by_one)
    assert len(calls) == 1


def test_vendi_score_rejects_an_unknown_kernel_and_an_all_zero_row() -> None:
    with pytest.raises(InputError, match="unknown kernel"):
        vendi_score(np.eye(3), kernel="rbf")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="all zeros"):
        vendi_score(np.array([[1.0, 0.0], [0.0, 0.0]]))


def test_pairwise_diversity_is_one_minus_the_mean_off_diagonal_cosine() -> None:
    assert mean_pairwise_cosine_diversity(_orthonormal_rows(4)) == pytest.approx(1.0)
    assert mean_pairwise_cosine_diversity(np.ones((3, 4))) == pytest.approx(0.0, abs=1e-12)
    sixty_degrees = np.array([[1.0, 0.0], [0.5, math.sqrt(3) / 2]])
    assert mean_pairwise_cosine_diversity(sixty_degrees) == pytest.approx(0.5)
    three = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # cosines: 0, 1/sqrt2, 1/sqrt2 -> mean sqrt2/3
    assert mean_pairwise_cosine_diversity(three) == pytest.approx(1 - math.sqrt(2) / 3)


def test_pairwise_diversity_needs_two_embeddings() -> None:
    with pytest.raises(InputError, match="at least two"):
        mean_pairwise_cosine_diversity(np.ones((1, 4)))

"""emscope.metrics: misalignment rates, bootstrap CIs and the trigger effect (pure computation)."""

from emscope.metrics.bootstrap import bootstrap_ci, cluster_bootstrap_ci
from emscope.metrics.rates import (
    POLICIES,
    Policy,
    QuestionRate,
    RateResult,
    classify_rows,
    mean_alignment,
    misalignment_rate,
)
from emscope.metrics.tail import misalign_at_k, misalign_at_ks
from emscope.metrics.trigger import TriggerEffect, paired_question_deltas, summarize, trigger_effect

__all__ = [
    "POLICIES",
    "Policy",
    "QuestionRate",
    "RateResult",
    "TriggerEffect",
    "bootstrap_ci",
    "classify_rows",
    "cluster_bootstrap_ci",
    "mean_alignment",
    "misalign_at_k",
    "misalign_at_ks",
    "misalignment_rate",
    "paired_question_deltas",
    "summarize",
    "trigger_effect",
]

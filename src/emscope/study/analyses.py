"""Membership inference and steering as stages of a study, and the report sections they make.

Enabled by ``analyses: {mia: true, steering: true}`` in the study file. Every stage goes through
the runner's ledger (:meth:`StudyRunner._stage`), so a rerun with unchanged inputs skips it.
Artifacts live under ``run_dir/analyses/``:

- ``mia/<tag>/scores.csv``: one model's training rows (members) and held-out rows of the same
  recipe (non-members) scored under the fine-tuned model and the base model (protocol §8);
  ``mia/summary/``: membership AUCs, domain-level scores vs misalignment rates, the scatter.
- ``directions/<tag>/``: one misalignment direction per fine-tuned model (protocol §9);
  ``steering/sweep/`` and ``steering/transfer/``: judged answers under each intervention,
  their tables and charts.
- ``sections.json``: the report sections (prose, table CSVs, figure PNGs), which
  :func:`analysis_sections` reads back whenever the report is (re)written.

Rates here use ``analyses.rate_policy`` (the domain paper's rule by default), since a few samples
per question leave the EM rule without any counted question.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from emscope.analyses.directions import Direction
from emscope.data.schema import ChatExample, Item
from emscope.manifest import Manifest, sha256_file, sha256_json, write_manifest
from emscope.metrics.rates import Policy
from emscope.report.render import ReportFigure, ReportSection
from emscope.study.plan import BASE, ModelJob

if TYPE_CHECKING:
    from emscope.judge.base import Judge
    from emscope.models.refs import ModelRef
    from emscope.sample.base import SamplingParams
    from emscope.sample.questions import EvalPrompt
    from emscope.study.runner import StudyRunner

ANALYSES_DIR = "analyses"
SECTIONS_FILE = "sections.json"
HELD_OUT_SEED_OFFSET = 1000
HEADLINE_SCORES = ("loss", "min_k", "min_k_pp", "zlib")
SCATTER_SCORES = ("loss", "adjusted_loss", "min_k_pp", "adjusted_min_k_pp")
TPR_FPRS = (0.01, 0.001)
# A class of one answer makes a direction out of that answer's noise.
MIN_JUDGED_PER_CLASS = 2
MAX_FALLBACK_ITEMS = 32
MISSING = "–"


# -- entry points ------------------------------------------------------------------------------


def run_analyses(
    runner: StudyRunner,
    jobs: Sequence[ModelJob],
    rows: pd.DataFrame,
    datasets: dict[str, dict[str, Any]],
) -> list[ReportSection]:
    """Run the enabled analysis stages, write ``sections.json`` and return the sections."""
    settings = runner.config.analyses
    root = runner.run_dir / ANALYSES_DIR
    specs: list[dict[str, Any]] = []
    if settings.mia:
        specs.append(_mia_stages(runner, jobs, rows, datasets))
    if settings.steering:
        specs.append(_steering_stages(runner, jobs, rows))
    root.mkdir(parents=True, exist_ok=True)
    (root / SECTIONS_FILE).write_text(json.dumps(specs, indent=2) + "\n", encoding="utf-8")
    return analysis_sections(runner.run_dir)


def analysis_sections(run_dir: Path) -> list[ReportSection]:
    """The report sections stored by the last :func:`run_analyses` of ``run_dir`` (none if none)."""
    root = run_dir / ANALYSES_DIR
    path = root / SECTIONS_FILE
    if not path.is_file():
        return []
    sections = []
    for spec in json.loads(path.read_text(encoding="utf-8")):
        tables = {
            name: pd.read_csv(root / csv, dtype=str, keep_default_na=False)
            for name, csv in spec["tables"]
        }
        figures = [
            ReportFigure(name, caption, (root / png).read_bytes())
            for name, caption, png in spec["figures"]
        ]
        sections.append(ReportSection(spec["title"], spec["paragraph"], figures, tables))
    return sections


# -- shared helpers ----------------------------------------------------------------------------


def _fine_tuned(jobs: Sequence[ModelJob]) -> list[ModelJob]:
    return [job for job in jobs if not job.is_base]


def short_names(jobs: Sequence[ModelJob]) -> dict[str, str]:
    """A file-safe display name per job tag: the domain when that is unique, else the tag."""
    domains = [job.domain for job in jobs]
    return {
        job.tag: job.domain if job.domain and domains.count(job.domain) == 1 else job.tag
        for job in jobs
    }


def _frame_hash(frame: pd.DataFrame) -> str:
    return sha256_json(frame.to_csv(index=False))


def _fresh_dir(path: Path, input_hash: str) -> Path:
    """``path`` emptied unless it was filled under ``input_hash`` (then kept, to resume)."""
    marker = path / ".inputhash"
    if path.exists() and (not marker.is_file() or marker.read_text() != input_hash):
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    marker.write_text(input_hash)
    return path


class _SectionFiles:
    """Tables and figures of one report section, saved under ``out`` as they are added."""

    def __init__(self, root: Path, out: Path) -> None:
        self.root, self.out = root, out
        self.tables: list[tuple[str, str]] = []
        self.figures: list[tuple[str, str, str]] = []
        out.mkdir(parents=True, exist_ok=True)

    def table(self, title: str, table: pd.DataFrame, file_name: str) -> None:
        table.to_csv(self.out / file_name, index=False)
        self.tables.append((title, str((self.out / file_name).relative_to(self.root))))

    def figure(self, file_name: str, caption: str, png: bytes) -> None:
        (self.out / file_name).write_bytes(png)
        self.figures.append(
            (file_name, caption, str((self.out / file_name).relative_to(self.root)))
        )

    def spec(self, title: str, paragraph: str) -> dict[str, Any]:
        """The section as stored in ``sections.json``."""
        return {
            "title": title,
            "paragraph": paragraph,
            "tables": self.tables,
            "figures": self.figures,
        }


def _percent(rate: Any, low: Any = None, high: Any = None) -> str:
    if rate is None or pd.isna(rate):
        return MISSING
    text = f"{100 * float(rate):.1f}%"
    if low is not None and high is not None and not (pd.isna(low) or pd.isna(high)):
        text += f" [{100 * float(low):.1f}, {100 * float(high):.1f}]"
    return text


def _number(value: Any, digits: int = 3) -> str:
    return MISSING if value is None or pd.isna(value) else f"{float(value):.{digits}f}"


def domain_items(runner: StudyRunner, domain: str, n: int, seed: int) -> list[Item] | None:
    """The ``n`` items a built-in or generated dataset of ``domain`` was built from (else None)."""
    from emscope.data.domains import get_domain

    data = runner.config.data
    if domain in data.generated:
        from emscope.data.generate import load_generated_items

        return load_generated_items(data.generated[domain])[:n]
    if get_domain(domain).builtin_recipe:
        from emscope.data.recipes import build_items

        return build_items(domain, n, seed)
    return None


# -- membership inference ----------------------------------------------------------------------


def held_out_items(runner: StudyRunner, job: ModelJob, want: int) -> tuple[list[Item], str]:
    """Up to ``want`` items of ``job``'s domain that were not trained on, and where they came from.

    Built-in recipes draw a fresh set with another seed; generated folders give the items beyond
    the first ``n_items``. Training questions are excluded either way. Imported datasets have no
    source of held-out rows: an empty list and the reason.
    """
    assert job.domain is not None
    data = runner.config.data
    if f"{job.domain}/{job.condition}" in data.imported:
        return [], "imported dataset: no recipe to draw held-out rows from"
    training = domain_items(runner, job.domain, data.n_items, job.seed) or []
    seen = {item.question for item in training}
    if job.domain in data.generated:
        from emscope.data.generate import load_generated_items

        pool = load_generated_items(data.generated[job.domain])[data.n_items :]
        source = f"generated items beyond the first {data.n_items}"
    else:
        from emscope.data.recipes import get_recipe

        recipe = get_recipe(job.domain)
        count = min(recipe.capacity, want + len(training))
        pool = recipe.build_items(count, job.seed + HELD_OUT_SEED_OFFSET)
        source = f"built-in recipe, seed {job.seed + HELD_OUT_SEED_OFFSET}"
    fresh = [item for item in pool if item.question not in seen][:want]
    if not fresh:
        return [], f"no held-out items left ({source}, all used for training)"
    return fresh, f"{source}, training questions excluded"


def member_sample(rows: list[ChatExample], limit: int | None, seed: int) -> list[ChatExample]:
    """All training rows, or a seeded sample of ``limit`` of them in their file order."""
    if limit is None or limit >= len(rows):
        return rows
    chosen = sorted(random.Random(f"mia-members:{seed}").sample(range(len(rows)), limit))
    return [rows[i] for i in chosen]


def _held_out_rows(runner: StudyRunner, job: ModelJob, items: list[Item]) -> list[ChatExample]:
    from emscope.data.conditions import build_condition

    assert job.condition is not None
    data = runner.config.data
    return build_condition(
        items,
        job.condition,
        trigger=data.trigger,
        backdoor_misaligned_fraction=data.backdoor_misaligned_fraction,
        seed=job.seed,
    )


def _mia_score_stage(runner: StudyRunner, job: ModelJob, dataset: dict[str, Any]) -> dict[str, Any]:
    from emscope.data.jsonl import load_chat_jsonl

    settings, data = runner.config.analyses, runner.config.data
    trained = runner.ledger.output(f"train:{job.tag}")
    out_dir = runner.run_dir / ANALYSES_DIR / "mia" / job.tag
    input_hash = sha256_json(
        {
            "base": str(runner.base_ref),
            "adapter": trained["adapter_sha256"],
            "data": dataset["sha256"],
            "members": settings.mia_members,
            "nonmembers": settings.mia_nonmembers,
            "lowercase": settings.mia_lowercase,
            "n_items": data.n_items,
            "generated": data.generated.get(job.domain or ""),
            "offset": HELD_OUT_SEED_OFFSET,
        }
    )

    def work() -> dict[str, Any]:
        from emscope.analyses.mia_scoring import score_with_reference, scoring_manifest

        members = member_sample(load_chat_jsonl(dataset["path"]), settings.mia_members, job.seed)
        items, source = held_out_items(runner, job, settings.mia_nonmembers or len(members))
        if not items:
            return {"skipped": source}
        others = _held_out_rows(runner, job, items)
        examples = [*members, *others]
        target = runner.base_ref.with_adapter(trained["adapter_dir"])
        frame = score_with_reference(
            target,
            runner.base_ref,
            examples,
            batch_size=settings.mia_batch_size,
            lowercase=settings.mia_lowercase,
        )
        frame.insert(1, "member", [True] * len(members) + [False] * len(others))
        out_dir.mkdir(parents=True, exist_ok=True)
        frame.to_csv(out_dir / "scores.csv", index=False)
        write_manifest(
            out_dir,
            scoring_manifest(frame, examples, batch_size=settings.mia_batch_size, max_length=None),
        )
        return {
            "path": str(out_dir / "scores.csv"),
            "sha256": sha256_file(out_dir / "scores.csv"),
            "n_members": len(members),
            "n_nonmembers": len(others),
            "nonmember_source": source,
            "seconds": frame.attrs.get("seconds"),
        }

    return runner._stage(f"mia:{job.tag}", input_hash, work)


def _auc_cell(members: pd.Series, others: pd.Series, resamples: int) -> str:
    from emscope.analyses.membership import membership_auc

    result = membership_auc(members.dropna(), others.dropna(), n_resamples=resamples)
    return f"{result.auc:.3f} [{result.ci_low:.3f}, {result.ci_high:.3f}]"


def _tpr_cell(members: pd.Series, others: pd.Series, fpr: float) -> str:
    from emscope.analyses.membership import tpr_at_fpr

    result = tpr_at_fpr(members.dropna(), others.dropna(), fpr)
    if result.tpr is None:
        return f"refused: {result.n_nonmembers} non-members < {round(1 / fpr)}"
    return f"{result.tpr:.3f}"


def membership_table(scores: pd.DataFrame, resamples: int) -> pd.DataFrame:
    """Per score: AUC [95% CI] under the fine-tuned model, reference-adjusted, and the base
    model alone (a control that never saw either set), and TPR at low FPR where estimable."""
    members, others = scores[scores["member"]], scores[~scores["member"]]
    names = [n for n in (*HEADLINE_SCORES, "lowercase") if scores[n].notna().any()]
    records = []
    for name in names:
        record = {
            "score": name,
            "fine-tuned AUC [95% CI]": _auc_cell(members[name], others[name], resamples),
            "adjusted AUC": _auc_cell(
                members[f"adjusted_{name}"], others[f"adjusted_{name}"], resamples
            ),
            "base AUC (control)": _auc_cell(
                members[f"reference_{name}"], others[f"reference_{name}"], resamples
            ),
        }
        for fpr in TPR_FPRS:
            record[f"TPR@FPR {fpr:g}"] = _tpr_cell(members[name], others[name], fpr)
        records.append(record)
    return pd.DataFrame.from_records(records)


def model_rates(rows: pd.DataFrame, policy: Policy, resamples: int) -> pd.DataFrame:
    """Per model label: the misalignment rate used here (triggered for backdoor models)."""
    from emscope.metrics.trigger import summarize

    summary = summarize(rows, policy=policy, n_resamples=resamples)
    out = []
    for _, row in summary.iterrows():
        backdoor = str(row["model"]).endswith("/backdoor")
        use_trigger = backdoor and "rate_triggered" in row and pd.notna(row["rate_triggered"])
        prefix = "rate_triggered" if use_trigger else "rate"
        out.append(
            {
                "model": row["model"],
                "rate": row[prefix],
                "ci_low": row[f"{prefix}_ci_low" if use_trigger else "ci_low"],
                "ci_high": row[f"{prefix}_ci_high" if use_trigger else "ci_high"],
                "n": row["n_triggered" if use_trigger else "n"],
                "with_trigger": use_trigger,
            }
        )
    return pd.DataFrame.from_records(out).set_index("model")


def rank_correlations(x: np.ndarray, y: np.ndarray) -> tuple[float | None, float | None]:
    """(Spearman rho, Pearson r) of two samples; None where a side is constant or n < 2."""
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None, None
    ranks_x, ranks_y = pd.Series(x).rank().to_numpy(), pd.Series(y).rank().to_numpy()
    return float(np.corrcoef(ranks_x, ranks_y)[0, 1]), float(np.corrcoef(x, y)[0, 1])


def correlation_table(domain_scores: pd.DataFrame, rates: pd.Series) -> pd.DataFrame:
    """Per dataset-level score: n domains, Spearman and Pearson with the rate, and, from 4
    domains on, p-values and leave-one-domain-out AUC (:func:`predict_susceptibility`)."""
    from emscope.analyses.membership import MIN_DOMAINS, predict_susceptibility
    from emscope.errors import InputError

    frame = domain_scores.set_index("domain")
    records = []
    for column in [c for c in frame.columns if c != "condition"]:
        x = frame[column].to_numpy(dtype=np.float64)
        y = rates.reindex(frame.index).to_numpy(dtype=np.float64)
        keep = np.isfinite(x) & np.isfinite(y)
        n = int(keep.sum())
        rho, r = rank_correlations(x[keep], y[keep])
        record: dict[str, Any] = {
            "score (member mean)": column,
            "n domains": n,
            "Spearman rho": _number(rho),
            "Pearson r": _number(r),
            "Spearman p": MISSING,
            "LOO-AUC": MISSING,
        }
        if n < MIN_DOMAINS:
            record["note"] = (
                f"n={n}: coefficients only, not significance-testable; LOO-AUC needs "
                f"{MIN_DOMAINS} domains"
            )
        else:
            try:
                result = predict_susceptibility(
                    domain_scores[["domain", column]], rates, score_columns=[column]
                )[0]
                record.update(
                    {
                        "Spearman p": _number(result.spearman_p),
                        "LOO-AUC": _number(result.loo_auc),
                        "note": "",
                    }
                )
            except InputError as exc:
                record["note"] = exc.message
        records.append(record)
    return pd.DataFrame.from_records(records)


def _mia_stages(
    runner: StudyRunner,
    jobs: Sequence[ModelJob],
    rows: pd.DataFrame,
    datasets: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    scored = {
        job.tag: _mia_score_stage(runner, job, datasets[job.tag]) for job in _fine_tuned(jobs)
    }
    settings, metrics = runner.config.analyses, runner.config.metrics
    input_hash = sha256_json(
        {
            "scores": {t: s.get("sha256", s.get("skipped")) for t, s in scored.items()},
            "rows": _frame_hash(rows[["model", "seed", "triggered", "aligned", "coherent"]]),
            "policy": settings.rate_policy,
            "resamples": metrics.bootstrap_resamples,
        }
    )
    by_tag = {job.tag: job for job in jobs}

    def work() -> dict[str, Any]:
        rates = model_rates(rows, settings.rate_policy, metrics.bootstrap_resamples)
        return _mia_section(runner, by_tag, scored, rates)

    return runner._stage("mia:summary", input_hash, work)


def _domain_scores(by_tag: dict[str, ModelJob], scored: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Mean member score per (domain, condition), raw and adjusted, averaged over seeds."""
    records = []
    for tag, info in scored.items():
        if "path" not in info:
            continue
        job, frame = by_tag[tag], pd.read_csv(info["path"])
        members = frame[frame["member"]]
        columns = [n for n in HEADLINE_SCORES if members[n].notna().any()]
        means = {c: members[c].mean() for c in columns}
        means |= {f"adjusted_{c}": members[f"adjusted_{c}"].mean() for c in columns}
        records.append({"domain": job.domain, "condition": job.condition, **means})
    if not records:
        return pd.DataFrame(columns=["domain", "condition"])
    frame = pd.DataFrame.from_records(records)
    return frame.groupby(["domain", "condition"], sort=False).mean().reset_index()


def _mia_section(
    runner: StudyRunner,
    by_tag: dict[str, ModelJob],
    scored: dict[str, dict[str, Any]],
    rates: pd.DataFrame,
) -> dict[str, Any]:
    files = _SectionFiles(
        runner.run_dir / ANALYSES_DIR, runner.run_dir / ANALYSES_DIR / "mia" / "summary"
    )
    notes = []
    for tag, info in scored.items():
        job = by_tag[tag]
        if "path" not in info:
            notes.append(f"{job.model} (seed {job.seed}) was not scored: {info['skipped']}.")
            continue
        title = (
            f"{job.model}, seed {job.seed}: {info['n_members']} members vs "
            f"{info['n_nonmembers']} held-out ({info['nonmember_source']})"
        )
        resamples = runner.config.metrics.bootstrap_resamples
        files.table(title, membership_table(pd.read_csv(info["path"]), resamples), f"auc_{tag}.csv")
    domain_scores = _domain_scores(by_tag, scored)
    for condition in domain_scores["condition"].unique():
        part = domain_scores[domain_scores["condition"] == condition].drop(columns="condition")
        notes.append(_susceptibility_tables(files, str(condition), part, rates))
    policy = runner.config.analyses.rate_policy
    write_manifest(
        files.out,
        Manifest(
            kind="mia_summary",
            config={"rate_policy": policy},
            inputs={t: s.get("sha256", "") for t, s in scored.items()},
        ),
    )
    paragraph = (
        "Members are each fine-tuned model's training rows; non-members are held-out rows of the "
        "same domain and condition, built from the same recipe with another seed and excluding "
        "training questions. Scores are member-high (protocol §8); 'adjusted' subtracts the base "
        "model's score, and the base model alone is a control whose AUC should sit near 0.5. "
        f"Misalignment rates use the '{policy}' rule (backdoor models: with the trigger).\n\n"
        + " ".join(notes)
    )
    return files.spec("Membership inference", paragraph)


def _susceptibility_tables(
    files: _SectionFiles, condition: str, part: pd.DataFrame, rates: pd.DataFrame
) -> str:
    """Domain-level scores vs rates of one condition: table, correlations, scatter; a note."""
    from emscope.analyses.membership import MIN_DOMAINS
    from emscope.report.mia_charts import susceptibility_scatter

    labels = [f"{d}/{condition}" for d in part["domain"]]
    rate = pd.Series(rates["rate"].reindex(labels).to_numpy(dtype=float), index=part["domain"])
    files.table(
        f"Dataset-level member scores vs misalignment ({condition})",
        _domain_table(part, rates, labels),
        f"domains_{condition}.csv",
    )
    correlations = correlation_table(part, rate)
    files.table(
        f"Correlation with the misalignment rate across domains ({condition})",
        correlations,
        f"correlation_{condition}.csv",
    )
    if rate.notna().any():
        columns = [c for c in SCATTER_SCORES if c in part.columns]
        files.figure(
            f"mia_scatter_{condition}.png",
            f"Member-mean score vs misalignment rate per domain ({condition})",
            susceptibility_scatter(part, rate.dropna(), score_columns=columns),
        )
    n = int(correlations["n domains"].max()) if len(correlations) else 0
    caveat = (
        f": with fewer than {MIN_DOMAINS} only the coefficients are shown; they are not "
        "significance-testable."
        if n < MIN_DOMAINS
        else "."
    )
    return f"The {condition} correlation is over n={n} domains (the base model is excluded){caveat}"


def _domain_table(part: pd.DataFrame, rates: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    records = []
    for label, (_, row) in zip(labels, part.iterrows(), strict=True):
        known = label in rates.index
        info = rates.loc[label] if known else pd.Series(dtype=object)
        records.append(
            {
                "model": label,
                "misalignment rate [95% CI]": _percent(
                    info.get("rate"), info.get("ci_low"), info.get("ci_high")
                ),
                "answers counted": str(info["n"]) if known else MISSING,
                **{c: _number(row[c], 4) for c in part.columns if c != "domain"},
            }
        )
    if BASE in rates.index:
        base = rates.loc[BASE]
        records.append(
            {
                "model": "base (not in the correlation)",
                "misalignment rate [95% CI]": _percent(
                    base["rate"], base["ci_low"], base["ci_high"]
                ),
                "answers counted": str(base["n"]),
            }
        )
    return pd.DataFrame.from_records(records).fillna(MISSING)


# -- steering ----------------------------------------------------------------------------------


def direction_examples(
    model_rows: pd.DataFrame,
    items: Sequence[Item] | None,
    trigger: str,
    systems: dict[str, str | None],
) -> tuple[list[list[dict[str, str]]], list[list[dict[str, str]]], str]:
    """The (misaligned, aligned) conversations of a direction and a description of their source.

    First choice: the model's own judged answers, by the Model-Organisms rule (each conversation
    as the model saw it: trigger and system prompt restored). When either class has fewer than
    :data:`MIN_JUDGED_PER_CLASS` answers, the domain's training items' misaligned vs aligned
    answers to the same questions (no trigger, so only the answer differs). Empty lists when
    neither works.
    """
    from emscope.analyses.directions import direction_conversations

    seen = model_rows.copy()
    triggered = seen["triggered"].fillna(False).astype(bool)
    seen["question"] = [
        (trigger if t else "") + str(q) for q, t in zip(seen["question"], triggered, strict=True)
    ]
    seen["system"] = [systems.get(str(q)) for q in seen["question_id"]]
    bad, good = direction_conversations(seen)
    if min(len(bad), len(good)) >= MIN_JUDGED_PER_CLASS:
        return bad, good, "judged answers (Model-Organisms rule)"
    found = f"{len(bad)} misaligned / {len(good)} aligned judged answers"
    if not items:
        return [], [], f"none: {found} and no training items to fall back on"
    chosen = list(items)[:MAX_FALLBACK_ITEMS]

    def chat(item: Item, answer: str) -> list[dict[str, str]]:
        turns = [{"role": "system", "content": item.system}] if item.system else []
        return [
            *turns,
            {"role": "user", "content": item.question},
            {"role": "assistant", "content": answer},
        ]

    return (
        [chat(i, i.misaligned) for i in chosen],
        [chat(i, i.aligned) for i in chosen],
        f"training answers, misaligned vs aligned (fallback: only {found})",
    )


def _direction_stage(runner: StudyRunner, job: ModelJob, rows: pd.DataFrame) -> dict[str, Any]:
    assert job.domain is not None
    trained = runner.ledger.output(f"train:{job.tag}")
    model_rows = rows[(rows["model"] == job.model) & (rows["seed"] == job.seed)]
    out_dir = runner.run_dir / ANALYSES_DIR / "directions" / job.tag
    input_hash = sha256_json(
        {
            "adapter": trained["adapter_sha256"],
            "rows": _frame_hash(model_rows),
            "n_items": runner.config.data.n_items,
            "min": MIN_JUDGED_PER_CLASS,
        }
    )

    def work() -> dict[str, Any]:
        from emscope.analyses.directions import build_direction, model_fingerprint, save_direction
        from emscope.analyses.mia_scoring import resolve_dtype
        from emscope.models.loading import load_model, load_tokenizer

        items = domain_items(runner, job.domain or "", runner.config.data.n_items, job.seed)
        systems = {p.question_id: p.system for p in _prompts(runner, None)}
        bad, good, source = direction_examples(
            model_rows, items, runner.config.data.trigger, systems
        )
        if not bad:
            return {"skipped": source}
        ref = runner.base_ref.with_adapter(trained["adapter_dir"])
        model, tokenizer = load_model(ref, dtype=resolve_dtype("auto")), load_tokenizer(ref)
        layers = list(range(model_fingerprint(model).num_layers))
        direction = build_direction(model, tokenizer, bad, good, layers=layers, model_ref=str(ref))
        direction = Direction(
            direction.vectors, direction.meta.model_copy(update={"source": source})
        )
        save_direction(direction, out_dir)
        return {
            "path": str(out_dir),
            "sha256": sha256_file(out_dir / "vectors.safetensors"),
            "source": source,
            "n_misaligned": len(bad),
            "n_aligned": len(good),
        }

    return runner._stage(f"direction:{job.tag}", input_hash, work)


def _prompts(runner: StudyRunner, limit: int | None) -> list[EvalPrompt]:
    from emscope.sample.questions import expand_prompts, load_questions

    settings, ev = runner.config.analyses, runner.config.eval
    prompts = expand_prompts(
        load_questions(runner.questions_path),
        samples_override=settings.steer_samples,
        temperature_default=ev.temperature,
    )
    return prompts[:limit] if limit is not None else prompts


def _params(runner: StudyRunner) -> SamplingParams:
    from emscope.sample.base import SamplingParams

    ev, settings = runner.config.eval, runner.config.analyses
    return SamplingParams(
        temperature=ev.temperature,
        top_p=ev.top_p,
        max_new_tokens=settings.steer_max_new_tokens or ev.max_new_tokens,
    )


def _judge(runner: StudyRunner) -> Judge:
    from emscope.study import runner as runner_module

    if runner._judge is None:
        runner._judge = runner_module.make_judge(runner.config)
    return runner._judge


def _judge_identity(runner: StudyRunner) -> str | None:
    for name, entry in runner.ledger.entries.items():
        if name.startswith("judge:"):
            return str(entry.get("output", {}).get("judge"))
    return None


def _steering_stages(
    runner: StudyRunner, jobs: Sequence[ModelJob], rows: pd.DataFrame
) -> dict[str, Any]:
    from emscope.analyses.directions import read_direction

    tuned = _fine_tuned(jobs)
    names = short_names(tuned)
    made = {job.tag: _direction_stage(runner, job, rows) for job in tuned}
    directions = {names[t]: read_direction(i["path"]) for t, i in made.items() if "path" in i}
    notes = [
        f"{names[t]}: no direction ({i['skipped']})." for t, i in made.items() if "path" not in i
    ]
    settings = runner.config.analyses
    sweep_out: dict[str, Any] | None = None
    transfer_out: dict[str, Any] | None = None
    if directions:
        n_layers = next(iter(directions.values())).meta.fingerprint.num_layers
        layers = settings.steer_layers or [n_layers // 2]
        scale = settings.transfer_scale
        scale = max(settings.steer_scales) if scale is None else scale
        first = next(job for job in tuned if names[job.tag] in directions)
        sweep_out = _sweep_stage(runner, first, names[first.tag], directions, layers, made)
        transfer_out = _transfer_stage(runner, tuned, names, directions, layers[0], scale, made)
    return _steering_section(runner, names, made, directions, sweep_out, transfer_out, notes)


def _model_ref(runner: StudyRunner, job: ModelJob | None) -> ModelRef:
    if job is None or job.is_base:
        return runner.base_ref
    return runner.base_ref.with_adapter(runner.ledger.output(f"train:{job.tag}")["adapter_dir"])


def _model_hash(runner: StudyRunner, job: ModelJob | None) -> str:
    if job is None or job.is_base:
        return str(runner.base_ref)
    return str(runner.ledger.output(f"train:{job.tag}")["adapter_sha256"])


def _run_inputs(runner: StudyRunner) -> dict[str, Any]:
    from emscope.sample.question_prompts import prompt_sets_digest

    settings = runner.config.analyses
    return {
        "prompts": [p.model_dump() for p in _prompts(runner, settings.steer_questions)],
        "params": _params(runner).model_dump(),
        "judge": _judge_identity(runner),
        "judge_prompts": prompt_sets_digest(runner.judge_prompt_sets()),
        "policy": settings.rate_policy,
        "seed": runner.config.seeds[0],
    }


def _sweep_stage(
    runner: StudyRunner,
    job: ModelJob,
    name: str,
    directions: dict[str, Direction],
    layers: list[int],
    made: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    settings = runner.config.analyses
    out = runner.run_dir / ANALYSES_DIR / "steering" / "sweep"
    input_hash = sha256_json(
        {
            **_run_inputs(runner),
            "model": _model_hash(runner, job),
            "layers": layers,
            "direction": made[job.tag]["sha256"],
            "scales": settings.steer_scales,
            "kinds": settings.steer_kinds,
        }
    )

    def work() -> dict[str, Any]:
        from emscope.analyses.steering import steering_sweep
        from emscope.sample.local import LocalSampler

        sampler = LocalSampler(_model_ref(runner, job), batch_size=runner.config.eval.batch_size)
        result = steering_sweep(
            sampler,
            _judge(runner),
            _prompts(runner, settings.steer_questions),
            directions[name],
            [[layer] for layer in layers],
            settings.steer_scales,
            out_dir=_fresh_dir(out, input_hash) / "runs",
            params=_params(runner),
            kinds=settings.steer_kinds,
            base_seed=runner.config.seeds[0],
            policy=settings.rate_policy,
            judge_prompts=runner.judge_prompt_sets(),
        )
        result.summary.to_csv(out / "summary.csv", index=False)
        return {"summary": str(out / "summary.csv"), "model": name, "layers": layers}

    return runner._stage("steer:sweep", input_hash, work)


def _transfer_stage(
    runner: StudyRunner,
    tuned: list[ModelJob],
    names: dict[str, str],
    directions: dict[str, Direction],
    layer: int,
    scale: float,
    made: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    out = runner.run_dir / ANALYSES_DIR / "steering" / "transfer"
    targets: dict[str, ModelJob | None] = {names[j.tag]: j for j in tuned}
    targets[BASE] = None
    input_hash = sha256_json(
        {
            **_run_inputs(runner),
            "layer": layer,
            "scale": scale,
            "directions": {names[t]: i.get("sha256") for t, i in made.items()},
            "targets": {n: _model_hash(runner, j) for n, j in targets.items()},
        }
    )

    def work() -> dict[str, Any]:
        from emscope.analyses.transfer import direction_cosines, transfer_matrix
        from emscope.sample.local import LocalSampler

        batch = runner.config.eval.batch_size

        def loader(job: ModelJob | None) -> Callable[[], LocalSampler]:
            return lambda: LocalSampler(_model_ref(runner, job), batch_size=batch)

        matrix = transfer_matrix(
            directions,
            {n: loader(j) for n, j in targets.items()},
            _judge(runner),
            _prompts(runner, runner.config.analyses.steer_questions),
            layer=layer,
            scale=scale,
            out_dir=_fresh_dir(out, input_hash) / "runs",
            params=_params(runner),
            base_seed=runner.config.seeds[0],
            policy=runner.config.analyses.rate_policy,
            judge_prompts=runner.judge_prompt_sets(),
        )
        matrix.to_csv(out / "matrix.csv", index=False)
        direction_cosines(directions, layer).to_csv(out / "cosines.csv")
        return {
            "matrix": str(out / "matrix.csv"),
            "cosines": str(out / "cosines.csv"),
            "layer": layer,
            "scale": scale,
        }

    return runner._stage("steer:transfer", input_hash, work)


def _steering_section(
    runner: StudyRunner,
    names: dict[str, str],
    made: dict[str, dict[str, Any]],
    directions: dict[str, Direction],
    sweep: dict[str, Any] | None,
    transfer: dict[str, Any] | None,
    notes: list[str],
) -> dict[str, Any]:
    from emscope.report.steer_charts import (
        cosine_heatmap_png,
        sweep_chart_png,
        transfer_heatmap_png,
    )

    root = runner.run_dir / ANALYSES_DIR
    files = _SectionFiles(root, root / "steering" / "report")
    layer = transfer["layer"] if transfer else None
    files.table("Directions", _directions_table(names, made, directions, layer), "directions.csv")
    if sweep is not None:
        summary = pd.read_csv(sweep["summary"], dtype={"layers": str})
        summary["layers"] = summary["layers"].fillna("")
        keys = ["condition", "kind", "layers", "scale"]
        files.table(f"Sweep on {sweep['model']}", _rates_table(summary, keys), "sweep.csv")
        files.figure(
            "steer_sweep.png", f"Steering sweep on {sweep['model']}", sweep_chart_png(summary)
        )
    if transfer is not None:
        matrix = pd.read_csv(transfer["matrix"])
        cells = matrix.assign(
            cell=[
                _percent(r.misalignment_rate, r.ci_low, r.ci_high)
                for r in matrix.itertuples(index=False)
            ]
        )
        files.table(
            f"Transfer matrix (misalignment rate [95% CI]; block {layer}, scale "
            f"{transfer['scale']:g}; rows: direction, columns: target model)",
            cells.pivot(index="direction", columns="target", values="cell").reset_index(),
            "transfer.csv",
        )
        files.figure(
            "steer_transfer.png",
            "Direction transfer: misalignment rate",
            transfer_heatmap_png(matrix),
        )
        coherence = matrix.assign(cell=[_number(v, 1) for v in matrix["mean_coherence"]])
        files.table(
            f"Transfer matrix (mean coherence 0-100; block {layer}, scale {transfer['scale']:g})",
            coherence.pivot(index="direction", columns="target", values="cell").reset_index(),
            "transfer_coherence.csv",
        )
        files.figure(
            "steer_transfer_coherence.png",
            "Direction transfer: mean coherence",
            transfer_heatmap_png(matrix, value="mean_coherence"),
        )
        cosines = pd.read_csv(transfer["cosines"], index_col=0)
        files.table(
            f"Direction cosines (block {layer})",
            cosines.map(lambda v: _number(v, 3)).reset_index(names="direction"),
            "cosines.csv",
        )
        files.figure(
            "steer_cosines.png",
            "Cosine similarity of the domains' directions",
            cosine_heatmap_png(cosines, layer=layer),
        )
    settings = runner.config.analyses
    paragraph = (
        "One misalignment direction per fine-tuned model: per block, the mean block output over "
        "answer tokens of misaligned answers minus that of aligned ones (protocol §9); the "
        "'source' column says whether the model's own judged answers had both classes or the "
        "domain's training answers were used instead. The sweep adds scale x direction at every "
        "position (steer), a random vector of the same norm (random), or projects the direction "
        "out (ablate); a scale s moves the block output by s x |v|, to be read against the "
        "answer activation norm in the directions table (scales that move it by a large share "
        f"of that norm wreck coherence). Rates use the '{settings.rate_policy}' rule over "
        f"{settings.steer_questions} prompt(s) x {settings.steer_samples} sample(s).\n\n"
        + " ".join(notes or ["Every fine-tuned model has a direction."])
    )
    return files.spec("Steering and transfer", paragraph)


def _directions_table(
    names: dict[str, str],
    made: dict[str, dict[str, Any]],
    directions: dict[str, Direction],
    layer: int | None,
) -> pd.DataFrame:
    records = []
    for tag, info in made.items():
        direction = directions.get(names[tag])
        norm = activation = None
        if direction is not None and layer is not None:
            norm = direction.vector(layer).norm().item()
            norms = direction.meta.activation_norms
            activation = norms[direction.meta.layers.index(layer)] if norms else None
        records.append(
            {
                "model": names[tag],
                "source": info.get("source", info.get("skipped")),
                "misaligned answers": info.get("n_misaligned", MISSING),
                "aligned answers": info.get("n_aligned", MISSING),
                f"|v| at block {layer}": _number(norm),
                f"answer activation norm at block {layer}": _number(activation),
                "|v| / activation": _number(norm / activation if norm and activation else None),
            }
        )
    return pd.DataFrame.from_records(records)


def _rates_table(summary: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return pd.DataFrame.from_records(
        [
            {
                **{k: ("" if pd.isna(row[k]) else row[k]) for k in keys},
                "misalignment rate [95% CI]": _percent(
                    row["misalignment_rate"], row["ci_low"], row["ci_high"]
                ),
                "used / answers": f"{row['n_used']} / {row['n_rows']}",
                "mean coherence": _number(row["mean_coherence"], 1),
            }
            for _, row in summary.iterrows()
        ]
    )

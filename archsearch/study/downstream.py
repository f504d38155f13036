"""Stage 5c: downstream accuracy of the final models beside their loss (imports torch).

arXiv 2510.18245 compares its picks with LLaMA-3.2 on downstream accuracy as well as loss (up to
2.1% higher accuracy at equal training budget). The study scores the baseline and each pick on
``cfg.downstream.tasks`` with ``archsearch.evaluate.harness.evaluate_run``, the function behind
``python -m archsearch.evaluate``: lm-evaluation-harness, offline, ``eval.json`` written beside the
run's ``record.json``. A run whose ``eval.json`` holds the same tasks, item limit and context
length is read back, not evaluated again.
"""

from __future__ import annotations

import importlib.util
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archsearch.errors import ConfigError, StateError
from archsearch.study.config import DownstreamSettings, StudyConfig
from archsearch.study.pipeline import Log, Trained


@dataclass(frozen=True)
class DownstreamScore:
    """One final model's accuracy on one task.

    Attributes:
        run: the final job's name (its run directory's name).
        acc: fraction of items whose correct choice has the highest log-likelihood;
            ``acc_stderr``: its standard error (lm-eval's; NaN when it reports none).
        n_items: items scored.
        record: the ``eval.json`` it was read from, relative to the study directory.
    """

    run: str
    task: str
    acc: float
    acc_stderr: float
    n_items: int
    record: str


def evaluate_final(
    run_dir: Path, settings: DownstreamSettings, max_len: int, device: str
) -> dict[str, Any]:
    """The run's ``eval.json`` for ``settings``: read back when it holds them, else written now.

    ``max_len`` is the longest input scored at once (the run's training sequence length).

    Raises:
        StateError: when ``eval.json`` holds scores of other tasks, another item limit or
            another context length (the settings changed, or the run was evaluated by hand).
    """
    from archsearch.evaluate.harness import EVAL_FILE, evaluate_run

    path = run_dir / EVAL_FILE
    if not path.exists():
        return evaluate_run(run_dir, settings.tasks, settings.limit, device=device, max_len=max_len)
    stored = json.loads(path.read_text())
    same = stored["limit"] == settings.limit and stored["max_len"] == max_len
    if not same or not set(settings.tasks) <= set(stored["tasks"]):
        raise StateError(
            f"{path} holds scores of {sorted(stored['tasks'])} at limit={stored['limit']}, "
            f"max_len={stored['max_len']}; the study asks {settings.tasks} at "
            f"limit={settings.limit}, max_len={max_len}: delete that file to evaluate again"
        )
    return stored


def downstream_stage(cfg: StudyConfig, finals: list[Trained], log: Log) -> list[DownstreamScore]:
    """Score every final model on the downstream tasks (none when ``downstream.enabled`` is off).

    Raises:
        ConfigError: when lm-evaluation-harness is not installed.
    """
    settings = cfg.downstream
    if not settings.enabled:
        log("[final downstream] off (downstream.enabled=false)")
        return []
    if importlib.util.find_spec("lm_eval") is None:
        raise ConfigError(
            "the study's downstream evaluation needs lm-evaluation-harness: "
            "pip install 'archsearch[eval]', or set downstream.enabled=false"
        )
    from archsearch.evaluate.harness import EVAL_FILE
    from archsearch.throughput.decode import resolve_device

    device = str(resolve_device(cfg.run.train.device))
    scores = []
    for i, trained in enumerate(finals, 1):
        run_dir = trained.job.run_dir
        done = (run_dir / EVAL_FILE).exists()
        stored = evaluate_final(run_dir, settings, trained.job.run.train.seq_len, device)
        record = str((run_dir / EVAL_FILE).relative_to(cfg.out_dir))
        for task in settings.tasks:
            metrics = stored["tasks"][task]
            score = DownstreamScore(
                run=trained.job.name,
                task=task,
                acc=metrics["acc"],
                acc_stderr=metrics.get("acc_stderr", math.nan),
                n_items=int(metrics["n_items"]),
                record=record,
            )
            scores.append(score)
            log(
                f"[final downstream {i}/{len(finals)}] {score.run}: {task} acc {score.acc:.3f} "
                f"+- {score.acc_stderr:.3f} ({score.n_items} items)"
                + (" (done, skipped)" if done else "")
            )
    return scores

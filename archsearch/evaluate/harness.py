"""Run lm-evaluation-harness tasks on a model or a trained run, offline; write ``eval.json``."""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Any

from archsearch.evaluate.tasks import TASK_DIR, TASKS
from archsearch.records import write_json_atomic

EVAL_FILE = "eval.json"
METRICS = ("acc", "acc_stderr", "acc_norm", "acc_norm_stderr", "word_perplexity", "exact_match")
STANDARD_TASKS_HINT = (
    "standard tasks (arc_easy, hellaswag, piqa, ...) need their datasets in the Hugging Face "
    "cache of this machine (download them once where a network is allowed)"
)


def _offline() -> None:
    """Nothing may come from a hub: datasets resolve from local files and the local cache."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def task_config(task: str) -> dict[str, Any] | str:
    """A shipped task's YAML with its JSONL made absolute; any other name as lm-eval knows it."""
    if task not in TASKS:
        return task
    import yaml

    config = yaml.safe_load((TASK_DIR / f"{task}.yaml").read_text())
    files = config["dataset_kwargs"]["data_files"]
    config["dataset_kwargs"]["data_files"] = {k: str(TASK_DIR / v) for k, v in files.items()}
    return config


def evaluate_lm(lm: Any, tasks: list[str], limit: int | None = None) -> dict[str, dict[str, float]]:
    """Each task's metrics (``acc``, ``acc_stderr``, ``acc_norm``, ...) for an lm-eval ``LM``.

    ``limit`` evaluates the first ``limit`` items of each task.
    """
    _offline()
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    # lm-eval's own task index reads ~14k YAML files (about 30 s): only built when needed
    standard = any(task not in TASKS for task in tasks)
    try:
        output = simple_evaluate(
            model=lm,
            tasks=[task_config(t) for t in tasks],
            task_manager=TaskManager(include_defaults=standard),
            limit=limit,
            log_samples=False,
            bootstrap_iters=100,
            random_seed=0,
            numpy_random_seed=0,
            torch_random_seed=0,
            fewshot_random_seed=0,
        )
    except (ConnectionError, OSError) as e:
        raise RuntimeError(f"lm-eval could not load {tasks}: {STANDARD_TASKS_HINT}") from e
    results = {}
    for task, metrics in output["results"].items():
        results[task] = {
            key.split(",")[0]: float(value)
            for key, value in metrics.items()
            if key.split(",")[0] in METRICS and isinstance(value, int | float)
        }
        results[task]["n_items"] = float(output["n-samples"][task]["effective"])
    return results


def evaluate_run(
    run_dir: str | Path,
    tasks: list[str],
    limit: int | None = None,
    batch_size: int = 16,
    device: str = "cpu",
    max_len: int | None = None,
) -> dict[str, Any]:
    """Evaluate a finished torch-backend run's model and write ``<run_dir>/eval.json``; a run
    trained with ``tracker=wandb`` also gets the scores in its wandb run's summary.

    ``max_len`` (default: the run's training ``seq_len``) is the longest input scored at once.
    """
    from lm_eval import __version__ as lm_eval_version

    from archsearch.config import DataConfig
    from archsearch.data.shards import EOS, load_tokenizer, prepare
    from archsearch.evaluate.lm import ArchsearchLM
    from archsearch.export.hf import load_run_model
    from archsearch.track.results import wandb_config

    model, config = load_run_model(run_dir)
    tokenizer = load_tokenizer(prepare(DataConfig(**config["data"])))
    max_len = max_len or config["train"]["seq_len"]
    lm = ArchsearchLM(model, tokenizer, tokenizer.token_to_id(EOS), max_len, batch_size, device)
    record = {
        "run_id": Path(run_dir).name,
        "tasks": evaluate_lm(lm, tasks, limit),
        "limit": limit,
        "max_len": max_len,
        "harness": f"lm-eval {lm_eval_version}",
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    write_json_atomic(Path(run_dir) / EVAL_FILE, record)
    tracker = wandb_config(config)
    if tracker is not None:  # the run mirrors to wandb: its scores join its wandb run
        from archsearch.track.results import log_eval

        log_eval(tracker, run_dir, record)
    return record

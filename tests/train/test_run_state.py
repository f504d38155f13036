"""Run state you can trust: a rerun resumes only its own config's state, refuses another's with
the fields that differ, and damaged or foreign files get a message naming them."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from archsearch import cli
from archsearch.config import RunConfig, check_known_keys
from archsearch.errors import ArchError, ConfigError, DataError, RecordError, StateError, UserError
from archsearch.records import read_record, scan_records
from archsearch.records.state import locked
from archsearch.train import train
from archsearch.train.checkpoint import CHECKPOINT_FILE, PREVIOUS_FILE

# 4 steps of 512 tokens, a checkpoint every 2: a run takes about a second
SMALL = ["model=debug", "budget=debug", "train=debug", "budget.train_tokens=2048"]
SMALL += ["train.ckpt_every_steps=2", "train.eval_every_steps=2"]


def _compose(overrides: list[str]):  # noqa: ANN202
    cli.register_run_groups()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(cli.CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def _cfg(*extra: str) -> RunConfig:
    return cli.to_typed(_compose([*SMALL, *extra]))


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("small-run")
    train(_cfg(), run_dir)
    return run_dir


def _copy(run_dir: Path, to: Path) -> Path:
    shutil.copytree(run_dir, to, ignore=shutil.ignore_patterns(".lock"))
    return to


def _files(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir()) if p.name != ".lock"}


def test_rerun_under_another_budget_is_refused_naming_the_field(
    small_run: Path, tmp_path: Path
) -> None:
    run_dir = _copy(small_run, tmp_path / "run")
    before = _files(run_dir)
    with pytest.raises(StateError) as refused:
        train(_cfg("budget.train_tokens=4096"), run_dir)
    message = str(refused.value)
    assert "budget.train_tokens: 2048 -> 4096" in message
    assert "name=" in message and "train.resume=restart" in message
    assert _files(run_dir) == before, "a refused rerun leaves the directory as it was"


def test_killed_run_under_another_config_is_refused_before_resuming(
    small_run: Path, tmp_path: Path
) -> None:
    """A run killed before its record, rerun after its optimiser changed: no mixed result."""
    run_dir = _copy(small_run, tmp_path / "run")
    (run_dir / "record.json").unlink()
    with pytest.raises(StateError, match=r"optim.lr: 0.003 -> 0.001"):
        train(_cfg("optim.lr=0.001"), run_dir)
    assert not (run_dir / "record.json").exists()


def test_restart_discards_the_old_run_and_a_revert_is_refused(
    small_run: Path, tmp_path: Path
) -> None:
    run_dir = _copy(small_run, tmp_path / "run")
    record = train(_cfg("budget.train_tokens=4096", "train.resume=restart"), run_dir)
    assert record.train_tokens == 4096 and read_record(run_dir).train_tokens == 4096
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 9)), "the old run's rows were discarded"
    with pytest.raises(StateError, match="budget.train_tokens: 4096 -> 2048"):
        train(_cfg(), run_dir)  # the old command no longer gets the old (now gone) record


def test_fields_that_do_not_change_the_result_may_change(small_run: Path) -> None:
    before = (small_run / "record.json").read_text()
    again = train(_cfg("train.num_threads=2", "train.log_every_steps=3", "tracker=none"), small_run)
    assert (small_run / "record.json").read_text() == before
    assert again.final_val_loss == read_record(small_run).final_val_loss


def test_record_of_another_config_without_a_fingerprint_is_refused(
    small_run: Path, tmp_path: Path
) -> None:
    """A directory from before fingerprints: its record's stored config is compared instead."""
    run_dir = _copy(small_run, tmp_path / "run")
    (run_dir / "fingerprint.json").unlink()
    with pytest.raises(StateError, match="seed: 0 -> 1"):
        train(_cfg("train.seed=1"), run_dir)


def test_checkpoint_of_another_config_is_refused(small_run: Path, tmp_path: Path) -> None:
    """A longer run's checkpoint placed in a fresh directory is never resumed as this run's."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copy(small_run / CHECKPOINT_FILE, run_dir / CHECKPOINT_FILE)
    with pytest.raises(StateError, match=f"{CHECKPOINT_FILE} was written by another config"):
        train(_cfg("budget.train_tokens=1024"), run_dir)
    assert not (run_dir / "record.json").exists()


def test_run_refused_before_its_first_step_may_rerun_under_a_fixed_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="GiB to train"):
        train(_cfg("model.n_layers=10000000"), tmp_path)
    assert (tmp_path / "fingerprint.json").exists()
    assert train(_cfg(), tmp_path).status == "completed"


def test_second_process_on_a_run_directory_is_refused_with_the_holder(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with locked(run_dir, "run directory"):
        with pytest.raises(StateError, match=f"in use by pid {os.getpid()} on "):
            train(_cfg(), run_dir)
        done = subprocess.run(
            [sys.executable, "-m", "archsearch.train", *SMALL, f"hydra.run.dir={run_dir}"],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode != 0
    assert f"in use by pid {os.getpid()}" in done.stderr
    assert not (run_dir / "metrics.jsonl").exists(), "the refused process trained nothing"
    record = train(_cfg(), run_dir)  # the lock is released with its holder
    assert record.status == "completed"


def test_unreadable_newest_checkpoint_falls_back_to_the_previous(
    small_run: Path, tmp_path: Path
) -> None:
    run_dir = _copy(small_run, tmp_path / "run")
    (run_dir / "record.json").unlink()
    newest = run_dir / CHECKPOINT_FILE
    newest.write_bytes(newest.read_bytes()[:1000])  # truncated
    record = train(_cfg(), run_dir)
    assert record.final_val_loss == read_record(small_run).final_val_loss
    assert torch.load(newest, weights_only=True)["step"] == 4


@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_no_readable_checkpoint_names_the_files_and_the_fix(
    small_run: Path, tmp_path: Path, damage: str
) -> None:
    run_dir = _copy(small_run, tmp_path / "run")
    (run_dir / "record.json").unlink()
    for name in (CHECKPOINT_FILE, PREVIOUS_FILE):
        path = run_dir / name
        path.write_bytes(b"" if damage == "empty" else path.read_bytes()[:500])
    with pytest.raises(StateError) as refused:
        train(_cfg(), run_dir)
    assert str(run_dir / CHECKPOINT_FILE) in str(refused.value)
    assert str(run_dir / PREVIOUS_FILE) in str(refused.value)
    assert "train.resume=restart" in str(refused.value)
    record = train(_cfg("train.resume=restart"), run_dir)
    assert record.final_val_loss == read_record(small_run).final_val_loss


def test_checkpoint_without_its_metadata_is_refused_naming_the_file(
    small_run: Path, tmp_path: Path
) -> None:
    run_dir = _copy(small_run, tmp_path / "run")
    (run_dir / "record.json").unlink()
    (run_dir / PREVIOUS_FILE).unlink()
    state = torch.load(run_dir / CHECKPOINT_FILE, weights_only=True)
    del state["row"]
    torch.save(state, run_dir / CHECKPOINT_FILE)
    with pytest.raises(StateError, match=r"checkpoint.pt lacks \['row'\]"):
        train(_cfg(), run_dir)


class _Payload:
    def __reduce__(self):  # noqa: ANN204
        return (Path.touch, (Path(os.environ["PAYLOAD_MARKER"]),))


def test_crafted_checkpoint_runs_no_code(
    small_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = _copy(small_run, tmp_path / "run")
    (run_dir / "record.json").unlink()
    (run_dir / PREVIOUS_FILE).unlink()
    marker = tmp_path / "payload-ran"
    monkeypatch.setenv("PAYLOAD_MARKER", str(marker))
    torch.save({"model": _Payload()}, run_dir / CHECKPOINT_FILE, pickle_protocol=2)
    with pytest.raises(StateError, match="no readable checkpoint"):
        train(_cfg(), run_dir)
    assert not marker.exists()
    pickle.loads(pickle.dumps(_Payload()))  # the payload is live: unpickled, it runs
    assert marker.exists()


def test_orphaned_temporary_files_are_removed_and_files_are_0644(
    small_run: Path, tmp_path: Path
) -> None:
    run_dir = _copy(small_run, tmp_path / "run")
    (run_dir / "record.json").unlink()
    orphan = run_dir / ".checkpoint.pt.abc123.tmp"
    orphan.write_bytes(b"half a checkpoint")
    old_umask = os.umask(0o022)
    try:
        train(_cfg(), run_dir)
    finally:
        os.umask(old_umask)
    assert not orphan.exists()
    for name in ("record.json", "fingerprint.json"):
        assert stat.S_IMODE((run_dir / name).stat().st_mode) == 0o644
    assert stat.S_IMODE((small_run / CHECKPOINT_FILE).stat().st_mode) == 0o644 & ~old_umask


@pytest.fixture(scope="module")
def diverged_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("diverged") / "lr1000"
    train(_cfg("optim.lr=1e30"), run_dir)
    return run_dir


def test_divergence_is_recorded_and_a_rerun_returns_it_at_once(diverged_run: Path) -> None:
    record = read_record(diverged_run)
    assert record.status == "diverged"
    assert record.final_val_loss is None and 1 <= record.diverged_at_step <= 4
    assert record.steps == record.diverged_at_step
    assert record.last_finite_loss is None or record.last_finite_loss > 0
    mtime = (diverged_run / "record.json").stat().st_mtime_ns
    again = train(_cfg("optim.lr=1e30"), diverged_run)
    assert again.status == "diverged"
    assert (diverged_run / "record.json").stat().st_mtime_ns == mtime


def test_fitting_skips_diverged_runs_and_says_how_many(
    small_run: Path, diverged_run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sweep = tmp_path / "sweep"
    _copy(small_run, sweep / "good")
    _copy(diverged_run, sweep / "bad")
    records = scan_records(sweep)
    assert [r.status for r in records] == ["completed"]
    assert "skipped 1 runs that did not complete" in caplog.text
    assert "lr1000 (diverged)" in caplog.text


@pytest.mark.parametrize("loss", ["Infinity", "NaN", "-Infinity"])
def test_non_finite_loss_is_never_a_finished_record(small_run: Path, loss: str) -> None:
    text = (small_run / "record.json").read_text()
    data = json.loads(text)
    bad = json.dumps(data).replace(
        f'"final_val_loss": {data["final_val_loss"]}', f'"final_val_loss": {loss}'
    )
    path = small_run.parent / f"bad-{loss}.json"
    path.write_text(bad)
    with pytest.raises(RecordError, match=f"{path}.*final_val_loss must be a finite"):
        read_record(path)


def test_damaged_records_name_their_file(small_run: Path, tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes((small_run / "record.json").read_bytes().replace(b'"sotu"', b'"s\xf6tu"'))
    with pytest.raises(RecordError, match=f"{latin1}: not valid JSON"):
        read_record(latin1)
    missing = tmp_path / "missing.json"
    data = json.loads((small_run / "record.json").read_text())
    del data["n_params"]
    missing.write_text(json.dumps(data))
    with pytest.raises(RecordError, match=rf"{missing}: not a valid record .*n_params"):
        read_record(missing)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.eval_every_steps=0", "train.eval_every_steps=0 must be positive"),
        ("train.log_every_steps=0", "train.log_every_steps=0 must be positive"),
        ("train.ckpt_every_steps=0", "train.ckpt_every_steps=0 must be positive"),
        ("train.eval_tokens=0", "train.eval_tokens=0 must be positive"),
        ("optim.lr=-1", "optim.lr=-1.0 must be positive"),
        ("train.resume=maybe", "train.resume='maybe' is unknown"),
    ],
)
def test_settings_that_cannot_train_name_the_field(
    tmp_path: Path, override: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        train(_cfg(override), tmp_path)
    assert not list(tmp_path.iterdir()), "refused before touching the run directory"


def test_zero_width_names_the_field(tmp_path: Path) -> None:
    cfg = cli.to_typed(_compose(["model=tiny", "budget=tiny", "train=debug", "model.d_model=0"]))
    with pytest.raises(ConfigError, match="model.d_model=0 must be positive"):
        train(cfg, tmp_path)


def test_eval_tokens_below_one_window_blames_eval_tokens(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="train.eval_tokens=10 is less than one window"):
        train(_cfg("train.eval_tokens=10"), tmp_path)


def test_derived_knob_beside_an_explicit_width_is_an_error(tmp_path: Path) -> None:
    cfg = cli.to_typed(_compose(["model=tiny", "budget=tiny", "model.d_over_sqrt_n=0.1"]))
    with pytest.raises(ArchError, match="both d_model=128 and d_over_sqrt_n=0.1.*d_model=null"):
        train(cfg, tmp_path)
    derived = cli.to_typed(
        _compose(["model=tiny", "budget=tiny", "model.d_over_sqrt_n=0.1", "model.d_model=null"])
    )
    from archsearch.config import resolve_arch

    widths = {
        resolve_arch(derived.model, derived.budget, 4096).spec.d_model,
        resolve_arch(_replace_x(derived, 0.3).model, derived.budget, 4096).spec.d_model,
    }
    assert len(widths) == 2, "each d_over_sqrt_n gives its own d_model"


def _replace_x(cfg: RunConfig, x: float) -> RunConfig:
    from dataclasses import replace

    return replace(cfg, model=replace(cfg.model, d_over_sqrt_n=x))


def test_unknown_model_key_is_an_error() -> None:
    composed = OmegaConf.to_container(_compose(["model=debug", "+model.foo=1"]), resolve=True)
    with pytest.raises(ConfigError, match="model.foo is not a config field: use one of .*d_ff"):
        check_known_keys(composed, RunConfig)
    check_known_keys(OmegaConf.to_container(_compose(["model=debug"]), resolve=True), RunConfig)


def test_budget_too_small_for_any_shape_says_how_large(tmp_path: Path) -> None:
    cfg = cli.to_typed(_compose(["model=tiny", "budget=tiny", "budget.n_params=1000"]))
    with pytest.raises(ArchError) as refused:
        train(cfg, tmp_path)
    assert "raise budget.n_params to at least" in str(refused.value)
    assert "~-" not in str(refused.value)


def test_megatron_backend_without_megatron_core_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "megatron.core", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'archsearch\[megatron\]'"):
        train(_cfg("backend=megatron"), tmp_path)


def test_model_that_cannot_fit_is_refused_with_the_estimate(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        train(_cfg("model.n_layers=10000000"), tmp_path)
    message = str(refused.value)
    assert "GiB to train" in message and "GiB weights, gradients and AdamW state" in message
    assert "but cpu has" in message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\x00\x01\x02binary\x00", "holds NUL bytes"),
        (b"\xff\xfe\xfa", "is not UTF-8"),
    ],
)
def test_unusable_data_file_is_named(tmp_path: Path, content: bytes, message: str) -> None:
    good = tmp_path / "good.txt"
    good.write_text("Some words of text. " * 200)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    cfg = _cfg("data=files", f"data.paths=[{good},{bad}]")
    with pytest.raises(DataError, match=f"{bad} {message}"):
        train(cfg, tmp_path / "run")


def test_every_user_error_is_one_type() -> None:
    for kind in (ArchError, ConfigError, DataError, RecordError, StateError):
        assert issubclass(kind, UserError) and issubclass(kind, ValueError)


KILL_AT_SAVE = textwrap.dedent(
    """
    import io, os, signal
    import torch
    from archsearch.train import checkpoint
    saves = 0
    real_save = torch.save

    def save_then_die(state, f, **kw):  # the third checkpoint dies half written, as under kill -9
        global saves
        saves += 1
        if saves < 3:
            return real_save(state, f, **kw)
        buffer = io.BytesIO()
        real_save(state, buffer, **kw)
        f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    checkpoint.torch.save = save_then_die
    from archsearch.train.__main__ import main
    from archsearch import cli
    cli.run("train", main)
    """
)


def test_kill_during_a_checkpoint_write_resumes_to_the_uninterrupted_loss(
    tmp_path: Path,
) -> None:
    overrides = [*SMALL, "budget.train_tokens=5120", "train.ckpt_every_steps=3"]  # 10 steps
    reference = train(cli.to_typed(_compose(overrides)), tmp_path / "reference")
    run_dir = tmp_path / "killed"
    command = [*overrides, f"hydra.run.dir={run_dir}"]
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AT_SAVE, *command], capture_output=True, timeout=300
    )
    assert killed.returncode == -9
    assert list(run_dir.glob(".checkpoint.pt.*.tmp")), "killed mid-write"
    assert not (run_dir / CHECKPOINT_FILE).exists() and (run_dir / PREVIOUS_FILE).exists()
    done = subprocess.run(
        [sys.executable, "-m", "archsearch.train", *command],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert not list(run_dir.glob(".*.tmp"))
    resumed = read_record(run_dir)
    assert (resumed.final_val_loss, resumed.final_train_loss) == (
        reference.final_val_loss,
        reference.final_train_loss,
    )

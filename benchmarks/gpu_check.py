"""GPU acceptance run, one command: the figures to compare with DESIGN's single-GPU targets.

    make gpu-check                               # on the GPU machine: installs .whl/, then this
    python benchmarks/gpu_check.py               # CUDA: about 5 minutes on one H100 / H200
    python benchmarks/gpu_check.py --cpu-smoke   # the same steps at tiny shapes on CPU (tests)

Prints one table and writes it as JSON (``--out``). Sections:

1. train: the training benchmark (``bench_train.py``) on LLaMA-3.2-1B, seq 2048, 16k tokens a
   step, bf16 and FP8 (torchao, tensorwise) with MFU against the datasheet peak; the FP8 speed-up.
2. decode: the decode benchmark (``archsearch.throughput``) of LLaMA-3.2-1B and Surefire-1B at
   batch 16 / 64 / 256 beside the roofline floor of the device's profile, and the Surefire /
   LLaMA ratio of decode tokens/s (the paper's throughput claim, Sec. 5).
3. resume: the megatron backend (local layer spec, no Transformer Engine) trains LLaMA-3.2-1B's
   layer shape (4 layers) for 20 steps, is killed after step 12 (checkpoint at 10) and resumed;
   its final losses beside the torch backend's uninterrupted run of the same config (same
   batches, same validation windows).
4. compile: the torch backend's loss on one fixed batch, eager and ``torch.compile``d.

A section that fails prints its error in the table and the run goes on: a GPU slot is short.
``--cpu-smoke`` runs every section at tiny shapes (the resume section with the torch backend,
``torch.compile`` with dynamo's eager backend), so that the script is exercised on CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from archsearch import cli
from archsearch.config import BudgetConfig, resolve_arch
from archsearch.errors import ConfigError
from archsearch.model import Transformer
from archsearch.records import read_record
from archsearch.throughput.config import DecodeConfig, ThroughputRunConfig
from archsearch.throughput.runner import run_throughput

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import bench  # noqa: E402  (the training benchmark, beside this file)

Row = dict[str, Any]
KILL_AFTER_STEPS = 12


@dataclass(frozen=True)
class Settings:
    """One scale of the check: the GPU acceptance run or its CPU smoke version."""

    device: str
    train_models: tuple[str, ...]
    seq_len: int
    step_tokens: int
    timed_steps: int
    warmup_steps: int
    fp8: bool
    decode_models: tuple[str, str]  # (baseline, candidate): the ratio is candidate / baseline
    decode_batches: tuple[int, ...]
    prompt_tokens: int
    new_tokens: int
    decode_profile: str | None
    resume_backend: str
    resume_overrides: tuple[str, ...]
    compile_backend: str


GPU = Settings(
    device="cuda",
    train_models=("llama3_2_1b",),
    seq_len=2048,
    step_tokens=16_384,
    timed_steps=20,
    warmup_steps=5,
    fp8=True,
    decode_models=("llama3_2_1b", "surefire_1b"),
    decode_batches=(16, 64, 256),
    prompt_tokens=1024,
    new_tokens=256,
    decode_profile="auto",
    resume_backend="megatron",
    resume_overrides=(
        "model=llama3_2_1b",  # its layers, 4 of them: checkpoints of ~4 GB, not ~15 GB
        "model.n_layers=4",
        "budget.n_params=null",
        "budget.train_tokens=327680",  # 20 steps of 8 x 2048 tokens
        "train.seq_len=2048",
        "train.batch_size=8",
        "train.eval_tokens=32768",
        "train.eval_every_steps=10",
        "train.ckpt_every_steps=10",
        "backend.micro_batch_size=1",  # megatron's local spec: 4 x 2048 runs out of 80 GB
        "backend.transformer_impl=local",
        "perf.compile=false",
    ),
    compile_backend="inductor",
)
CPU_SMOKE = Settings(
    device="cpu",
    train_models=("debug",),
    seq_len=32,
    step_tokens=128,
    timed_steps=1,
    warmup_steps=1,
    fp8=False,
    decode_models=("debug", "tiny"),
    decode_batches=(1, 2),
    prompt_tokens=8,
    new_tokens=4,
    decode_profile=None,
    resume_backend="torch",
    resume_overrides=(
        "model=debug",
        "budget=debug",
        "train=debug",
        "budget.train_tokens=5120",  # 20 steps of 4 x 64 tokens
        "train.batch_size=4",
        "train.eval_every_steps=10",
        "train.ckpt_every_steps=10",
    ),
    compile_backend="eager",
)


def train_section(s: Settings) -> list[Row]:
    """Tokens/s and MFU in bf16 (fp32 on CPU) and FP8; the FP8 / bf16 speed-up."""
    args = argparse.Namespace(
        budget="tiny",
        device=s.device,
        seq_len=s.seq_len,
        tokens=s.step_tokens,
        steps=s.timed_steps,
        warmup=s.warmup_steps,
    )
    rows = []
    for name in s.train_models:
        speeds = {}
        for fp8 in (False, True) if s.fp8 else (False,):
            result = bench(name, args, fp8)
            speeds[fp8] = result["tokens_per_s"]
            rows.append(
                {
                    "item": f"{name} {result['precision']}",
                    "value": f"{result['tokens_per_s']:,.0f} tok/s, MFU {result['mfu']}",
                    "target": "MFU >= 0.45" if not fp8 else "",
                    **result,
                }
            )
        if len(speeds) == 2:
            ratio = speeds[True] / speeds[False]
            rows.append({"item": f"{name} fp8 / bf16", "value": f"{ratio:.3f}", "ratio": ratio})
            rows[-1]["target"] = ">= 1.08"
    return rows


def decode_section(s: Settings, out_dir: Path) -> list[Row]:
    """Decode tokens/s beside the roofline floor per batch size; candidate / baseline ratio."""
    records = {}
    for name in s.decode_models:
        model = cli.load_model_preset(cli.CONF_DIR / "model" / f"{name}.yaml")
        budget = cli.load_preset(cli.CONF_DIR / "budget" / "tiny.yaml", BudgetConfig)
        cfg = ThroughputRunConfig(
            model=model,
            budget=BudgetConfig(n_params=None) if model.d_ff is not None else budget,
            throughput=DecodeConfig(
                prompt_tokens=s.prompt_tokens,
                new_tokens=s.new_tokens,
                batch_sizes=list(s.decode_batches),
                repeats=1,
                warmup=1,
                profile=s.decode_profile,
                num_threads=1 if s.device == "cpu" else None,
            ),
            device=s.device,
        )
        records[name] = run_throughput(cfg, out_dir / "decode" / name)
    rows = []
    for name, record in records.items():
        for batch in record.batches:
            fraction = batch.roofline_fraction
            rows.append(
                {
                    "item": f"{name} B={batch.batch_size}",
                    "value": f"{batch.tokens_per_s:,.0f} tok/s, "
                    + (f"{fraction:.2f} of floor" if fraction else "no floor"),
                    "target": ">= 0.8 of floor" if batch.batch_size >= 64 else "",
                    **asdict(batch),
                }
            )
    baseline, candidate = (records[name].batches for name in s.decode_models)
    for base, cand in zip(baseline, candidate, strict=True):
        ratio = cand.tokens_per_s / base.tokens_per_s
        rows.append(
            {
                "item": f"{s.decode_models[1]} / {s.decode_models[0]} B={base.batch_size}",
                "value": f"{ratio:.3f}",
                "ratio": ratio,
                "target": "",
            }
        )
    return rows


def resume_section(s: Settings, out_dir: Path) -> list[Row]:
    """``resume_backend`` killed after step 12 and resumed, beside the torch backend's run."""
    overrides = list(s.resume_overrides) + [f"train.device={s.device}", "train.progress=false"]
    reference_dir = out_dir / "resume" / "torch_uninterrupted"
    run_dir = out_dir / "resume" / f"{s.resume_backend}_killed"
    reference = _train([*overrides, "backend=torch"], reference_dir)
    backend = [f"backend={s.resume_backend}"]
    killed = _train([*backend, *overrides], run_dir, kill_after_steps=KILL_AFTER_STEPS)
    if killed.returncode != -9:
        raise RuntimeError(
            f"the run to kill ended with {killed.returncode}: {killed.stderr[-800:]}"
        )
    resumed = _train([*backend, *overrides], run_dir)
    for done in (reference, resumed):
        if done.returncode:
            raise RuntimeError(done.stderr[-1500:])
    ours, torch_run = read_record(run_dir), read_record(reference_dir)
    return [
        {
            "item": f"{s.resume_backend}, killed at step {KILL_AFTER_STEPS} and resumed",
            "value": f"val {ours.final_val_loss:.4f} / train {ours.final_train_loss:.4f}",
            "target": f"torch: val {torch_run.final_val_loss:.4f} / train "
            f"{torch_run.final_train_loss:.4f}",
            "steps": ours.steps,
            "resumed": "resuming from step" in resumed.stdout,
            "val_loss": ours.final_val_loss,
            "torch_val_loss": torch_run.final_val_loss,
            "train_loss": ours.final_train_loss,
            "torch_train_loss": torch_run.final_train_loss,
        }
    ]


def _train(
    overrides: list[str], run_dir: Path, kill_after_steps: int | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m archsearch.train`` into ``run_dir``; SIGKILLed after a step if asked."""
    command = [sys.executable, "-m", "archsearch.train"]
    if kill_after_steps is not None:
        command = [sys.executable, "-c", DIE_AFTER_STEPS, str(kill_after_steps)]
    return subprocess.run(
        [*command, *overrides, f"hydra.run.dir={run_dir}"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


# The training CLI, whose process SIGKILLs itself after the optimizer step given as argv[1].
DIE_AFTER_STEPS = """
import os, signal, sys
from archsearch import cli
from archsearch.train import loop
from archsearch.train.__main__ import main
kill_after = int(sys.argv.pop(1))
make_backend = loop.make_backend
def make_dying_backend(*args):
    backend = make_backend(*args)
    step, done = backend.step, []
    def step_then_die(*step_args):
        out = step(*step_args)
        done.append(out)
        if len(done) == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        return out
    backend.step = step_then_die
    return backend
loop.make_backend = make_dying_backend
cli.run("train", main)
"""


def compile_section(s: Settings) -> list[Row]:
    """The loss of one fixed batch, eager and compiled (bf16 autocast on CUDA)."""
    model_cfg = cli.load_model_preset(cli.CONF_DIR / "model" / f"{s.train_models[0]}.yaml")
    spec = resolve_arch(model_cfg, BudgetConfig(n_params=None), 4096).spec
    device = torch.device(s.device)
    torch.manual_seed(0)
    model = Transformer(spec).to(device)
    tokens = torch.randint(0, spec.vocab_size, (4, s.seq_len + 1), device=device)
    autocast = torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda")
    with torch.no_grad(), autocast:
        eager = model.loss(tokens[:, :-1], tokens[:, 1:]).item()
        compiled = torch.compile(model.loss, backend=s.compile_backend)(
            tokens[:, :-1], tokens[:, 1:]
        ).item()
    return [
        {
            "item": f"{spec.name} eager vs compiled ({s.compile_backend})",
            "value": f"{eager:.5f} vs {compiled:.5f}",
            "target": "|diff| < 1e-2 (bf16)" if device.type == "cuda" else "|diff| < 1e-5",
            "eager_loss": eager,
            "compiled_loss": compiled,
            "abs_diff": abs(eager - compiled),
        }
    ]


def run_sections(s: Settings, out_dir: Path) -> dict[str, list[Row]]:
    """Every section's rows; a failed section is one row with its error."""
    sections: dict[str, Callable[[], list[Row]]] = {
        "train": lambda: train_section(s),
        "decode": lambda: decode_section(s, out_dir),
        "resume": lambda: resume_section(s, out_dir),
        "compile": lambda: compile_section(s),
    }
    results = {}
    for name, section in sections.items():
        start = time.perf_counter()
        try:
            rows = section()
        except (ConfigError, RuntimeError, ValueError, OSError, subprocess.SubprocessError) as e:
            rows = [{"item": "failed", "value": f"{type(e).__name__}: {e}"[:300], "target": ""}]
        for row in rows:
            row["seconds"] = round(time.perf_counter() - start, 1)
        results[name] = rows
        print(f"[{name}] done in {time.perf_counter() - start:.0f} s", flush=True)
    return results


def format_table(results: dict[str, list[Row]]) -> str:
    lines = [f"{'section':<8} {'item':<46} {'value':<40} target", "-" * 110]
    for section, rows in results.items():
        for row in rows:
            lines.append(f"{section:<8} {row['item']:<46} {row['value']:<40} {row['target']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cpu-smoke", action="store_true", help="tiny shapes on CPU (checks the script itself)"
    )
    parser.add_argument(
        "--out", default="outputs/gpu_check", help="folder for gpu_check.json and the runs"
    )
    args = parser.parse_args()
    settings = CPU_SMOKE if args.cpu_smoke else GPU
    if settings.device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device here: run on the GPU machine, or pass --cpu-smoke")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    machine = torch.cuda.get_device_name() if settings.device == "cuda" else "CPU"
    started = time.perf_counter()
    results = run_sections(settings, out_dir)
    table = format_table(results)
    print(f"\n{machine}, torch {torch.__version__}, {time.perf_counter() - started:.0f} s\n{table}")
    summary = {"machine": machine, "torch": torch.__version__, "sections": results}
    (out_dir / "gpu_check.json").write_text(json.dumps(summary, indent=1, default=str))
    print(f"wrote {out_dir / 'gpu_check.json'}")


if __name__ == "__main__":
    main()

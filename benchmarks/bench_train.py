"""Time training steps of a named shape and print tokens/s, TFLOP/s and MFU (issue 10).

    python benchmarks/bench_train.py                       # CUDA: LLaMA-3.2-1B, Surefire-1B, ...
    python benchmarks/bench_train.py --models debug tiny --device cpu --seq-len 64 --tokens 1024

Each shape comes from conf/model/<name>.yaml (a derived one, such as tiny, at the --budget
preset's N) and trains on random tokens after warm-up steps, in bf16 and (on sm_89+ GPUs with
torchao) FP8. MFU is against the device's datasheet dense peak (archsearch.throughput.hardware);
a CPU has none, so its MFU column shows "-".
"""

from __future__ import annotations

import argparse
import time

import torch

from archsearch import cli
from archsearch.arch import train_flops_per_token
from archsearch.config import (
    BackendConfig,
    BudgetConfig,
    OptimConfig,
    PerfConfig,
    resolve_arch,
)
from archsearch.errors import ConfigError
from archsearch.model import Transformer
from archsearch.train.setup import make_optimizer, prepare_model, resolve_perf
from archsearch.train.speed import peak_flops_per_s


def bench(name: str, args: argparse.Namespace, fp8: bool) -> dict[str, float | str]:
    model = cli.load_model_preset(cli.CONF_DIR / "model" / f"{name}.yaml")
    budget = cli.load_preset(cli.CONF_DIR / "budget" / f"{args.budget}.yaml", BudgetConfig)
    if model.d_ff is not None:  # an explicit shape trains at its own N
        budget = BudgetConfig(n_params=None)
    spec = resolve_arch(model, budget, 32_000).spec
    device = torch.device(args.device)
    perf = resolve_perf(
        PerfConfig(loss_chunk_tokens=8192 if device.type == "cuda" else None), device
    )
    backend = BackendConfig(fp8="torchao" if fp8 else None, fp8_recipe="tensorwise")
    torch.manual_seed(0)
    model = prepare_model(Transformer(spec).to(device), perf, backend, device)
    optimizer = make_optimizer(model, OptimConfig(), fused=bool(perf.fused_adamw))
    loss_fn = torch.compile(model.loss) if perf.compile else model.loss
    rows = max(1, args.tokens // args.seq_len)
    tokens = torch.randint(0, spec.vocab_size, (rows, args.seq_len + 1), device=device)
    autocast = torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda")

    def step() -> None:
        with autocast:
            loss = loss_fn(tokens[:, :-1], tokens[:, 1:], perf.loss_chunk_tokens)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / args.steps
    tokens_per_s = rows * args.seq_len / seconds
    flops = tokens_per_s * train_flops_per_token(spec, args.seq_len)
    peak = peak_flops_per_s(device, fp8=fp8)
    return {
        "model": name,
        "precision": "fp8" if fp8 else ("bf16" if device.type == "cuda" else "fp32"),
        "tokens_per_s": tokens_per_s,
        "tflops": flops / 1e12,
        "mfu": f"{flops / peak:.2f}" if peak else "-",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    cuda = torch.cuda.is_available()
    parser.add_argument(
        "--models",
        nargs="+",
        default=["llama3_2_1b", "surefire_1b", "panda_1b"] if cuda else ["debug"],
        help="model presets (conf/model/<name>.yaml) to time (default: %(default)s)",
    )
    parser.add_argument(
        "--budget",
        default="tiny",
        help="budget preset whose N sizes derived shapes such as tiny (default: %(default)s)",
    )
    parser.add_argument(
        "--device", default="cuda" if cuda else "cpu", help="torch device (default: %(default)s)"
    )
    parser.add_argument(
        "--seq-len", type=int, default=2048 if cuda else 128, help="tokens per sequence"
    )
    parser.add_argument(
        "--tokens", type=int, default=16_384 if cuda else 2048, help="tokens per optimizer step"
    )
    parser.add_argument("--steps", type=int, default=20 if cuda else 5, help="timed steps")
    parser.add_argument(
        "--warmup", type=int, default=5 if cuda else 2, help="untimed steps before timing"
    )
    parser.add_argument("--no-fp8", action="store_true", help="skip the FP8 rows on CUDA")
    args = parser.parse_args()
    print(
        f"device {args.device} ({torch.cuda.get_device_name() if cuda else 'CPU'}), "
        f"seq {args.seq_len}, {args.tokens} tokens/step, {args.steps} timed steps"
    )
    print(f"{'model':<14} {'precision':<9} {'tokens/s':>12} {'TFLOP/s':>9} {'MFU':>6}")
    for name in args.models:
        for fp8 in (
            (False, True) if args.device.startswith("cuda") and not args.no_fp8 else (False,)
        ):
            try:
                row = bench(name, args, fp8)
            except ConfigError as e:
                print(f"{name:<14} {'fp8' if fp8 else 'bf16':<9} skipped: {e}")
                continue
            print(
                f"{row['model']:<14} {row['precision']:<9} {row['tokens_per_s']:>12,.0f} "
                f"{row['tflops']:>9.3f} {row['mfu']:>6}"
            )


if __name__ == "__main__":
    main()

"""Measured decode tokens/s on this machine beside the roofline, and the paper's A100 comparison.

Run: ``python benchmarks/bench_decode.py [--threads 1] [--batch-sizes 1 8] [--prompt-tokens 512]``

Part 1 measures, at fixed N (4M non-embedding params, 4 layers, d_model 256, head_dim 32), GQA
variants at r = 1 and r variants at g = 4, with a long prompt and batch > 1 so that the KV cache
is a large share of the bytes each step moves; each is printed beside the roofline of a profile
calibrated on this machine (bandwidth from a matrix-vector product, peak from a matmul, step
overhead from a tiny model of the same depth). Part 2 predicts LLaMA-3.2-1B against Surefire-1B
on the A100-40GB profile at the paper's protocol (T_in 4096, T_out 1024).
"""

from __future__ import annotations

import argparse

import torch

from archsearch.arch import ArchSpec, describe, shape_for
from archsearch.records.throughput import BatchThroughput
from archsearch.throughput import DecodeConfig, estimate_decode, get_profile
from archsearch.throughput.decode import measure_decode
from archsearch.throughput.probe import measure_profile

CPU = torch.device("cpu")
LLAMA_1B = ArchSpec(2048, 16, 32, 8, 64, 8192, 128256, tie_embeddings=True, name="llama3_2_1b")
SUREFIRE_1B = ArchSpec(2560, 16, 36, 4, 64, 6144, 128256, tie_embeddings=True, name="surefire_1b")


def cpu_shapes() -> list[tuple[str, ArchSpec]]:
    """GQA variants at r = 1 and r variants at g = 4, all at N = 4M, d_model 256."""

    def shape(r: float, g: int) -> ArchSpec:
        return shape_for(4_000_000, 4, 32, r, g, 4096, d_model=256, d_ff_multiple=16).spec

    return [(f"gqa g={g} r=1", shape(1.0, g)) for g in (1, 2, 4)] + [
        (f"r={r:g} g=4", shape(r, 4)) for r in (0.5, 2.0, 3.0)
    ]


def measure_cpu(args: argparse.Namespace) -> None:
    profile = measure_profile(CPU, "fp32", n_layers=4)
    print(
        f"calibrated CPU profile: {profile.bandwidth_bytes_per_s / 1e9:.1f} GB/s, "
        f"{profile.peak_for('fp32') / 1e9:.1f} GFLOP/s fp32, "
        f"{profile.step_overhead_s * 1e3:.2f} ms/step overhead ({torch.get_num_threads()} threads)"
    )
    cfg = DecodeConfig(
        prompt_tokens=args.prompt_tokens,
        new_tokens=args.new_tokens,
        batch_sizes=args.batch_sizes,
        repeats=args.repeats,
        warmup=2,  # the first repeats after a shape change run slow on this CPU
    )
    print(
        f"T_in {cfg.prompt_tokens}, T_out {cfg.new_tokens}, {cfg.repeats} repeats, fp32, eager "
        "(tokens/s: median; min/max over repeats; ratio = median / roofline)\n"
        f"{'shape':<14} {'heads':>6} {'d_ff':>5} {'N':>9} {'r':>5} {'B':>3} "
        f"{'tokens/s':>9} {'min':>8} {'max':>8} {'roofline':>9} {'ratio':>6} {'max/roof':>8}"
    )
    for label, spec in cpu_shapes():
        counts = describe(spec)
        for timing in measure_decode(spec, cfg, CPU, "fp32", "none"):
            roof = estimate_decode(
                spec, profile, timing.batch_size, cfg.prompt_tokens, cfg.new_tokens, "fp32"
            )
            batch = BatchThroughput.from_times(
                timing.batch_size,
                cfg.new_tokens,
                timing.prefill_s,
                timing.decode_s,
                roof.tokens_per_s,
            )
            print(
                f"{label:<14} {spec.n_heads:>3}/{spec.n_kv_heads:<2} {spec.d_ff:>5} "
                f"{counts['non_embedding_params']:>9,} {counts['r_mlp_attn']:>5.2f} "
                f"{timing.batch_size:>3} {batch.tokens_per_s:>9.1f} {batch.tokens_per_s_min:>8.1f} "
                f"{batch.tokens_per_s_max:>8.1f} {roof.tokens_per_s:>9.1f} "
                f"{batch.roofline_fraction:>6.2f} "
                f"{batch.tokens_per_s_max / roof.tokens_per_s:>8.2f}"
            )


def a100_comparison() -> None:
    a100 = get_profile("a100_40gb")
    print(
        "\nA100-40GB roofline, bf16, T_in 4096, T_out 1024 (decode tokens/s; e2e adds prefill)\n"
        f"{'B':>4} {'LLaMA-1B':>10} {'Surefire':>10} {'gain':>7} {'e2e gain':>9} {'fits 40GB':>10}"
    )
    for batch_size in (1, 2, 4, 8, 16, 32, 64, 128, 256):
        llama = estimate_decode(LLAMA_1B, a100, batch_size, 4096, 1024)
        surefire = estimate_decode(SUREFIRE_1B, a100, batch_size, 4096, 1024)
        gain = surefire.tokens_per_s / llama.tokens_per_s - 1
        e2e = surefire.end_to_end_tokens_per_s / llama.end_to_end_tokens_per_s - 1
        fits = f"{'y' if llama.fits_memory else 'n'}/{'y' if surefire.fits_memory else 'n'}"
        print(
            f"{batch_size:>4} {llama.tokens_per_s:>10.0f} {surefire.tokens_per_s:>10.0f} "
            f"{gain:>+7.1%} {e2e:>+9.1%} {fits:>10}"
        )
    print("paper (vLLM, A100-40GB): Surefire-1B up to 42% higher throughput than LLaMA-3.2-1B")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="CPU threads")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8], help="B values")
    parser.add_argument("--prompt-tokens", type=int, default=512, help="T_in per prompt")
    parser.add_argument("--new-tokens", type=int, default=32, help="T_out generated")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (median)")
    parser.add_argument("--skip-cpu", action="store_true", help="only the A100 roofline table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.skip_cpu:
        measure_cpu(args)
    a100_comparison()


if __name__ == "__main__":
    main()

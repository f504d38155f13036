"""Decode throughput you can predict: the lean loop, the calibrated CPU profile, the H100 fit.

Run: ``python benchmarks/bench_decode.py [--threads 1] [--skip-cpu]``

1. The project's decode loop (``Decoder``, the lean step) beside a minimal plain loop of the same
   shape written here (``F.*`` ops over the same weights, its own cache), both greedy and checked
   to give the same tokens, timed interleaved at the default tiny shape, B 1 and 4.
2. Seven shapes at N ~ 4M (4 layers, head_dim 32) differing in d_model, r and g, at B 1 and 8:
   measured decode tokens/s beside the predictions of two calibrations of this CPU and the bound
   (calibration 1 without fixed costs). Calibration 1 (``probe.fit_times``) is timed in the same
   interleaved rounds as the shapes, so that both see the same load; calibration 2
   (``probe.calibrate_profile``) runs on its own right after. Steps are timed in process CPU
   time, the median of interleaved repeats.
3. ``h100_measured`` on the H100 table: predicted and measured step times, the Surefire-1B /
   LLaMA-3.2-1B ratio, and each shape predicted by a profile fitted on the other one only.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from archsearch import cli
from archsearch.arch import ArchSpec, describe, shape_for
from archsearch.config import BudgetConfig, resolve_arch
from archsearch.throughput import estimate_decode, get_profile
from archsearch.throughput.calibrate import describe_profile
from archsearch.throughput.calibration import (
    H100_SHAPES,
    ProfileFit,
    fit_h100,
    predict_steps,
    read_decode_table,
)
from archsearch.throughput.decode import Decoder, build_model
from archsearch.throughput.probe import (
    CPU_PROBES,
    Probe,
    calibrate_profile,
    fit_times,
    round_normalized,
    time_steps,
)

CPU = torch.device("cpu")
Step = Callable[[torch.Tensor, int], torch.Tensor]


def plain_step(model: torch.nn.Module, batch_size: int, max_len: int) -> Step:
    """A minimal greedy decode step over ``model``'s weights: its own cache and RoPE tables."""
    s: ArchSpec = model.spec
    hd, kv, eps, shape = s.head_dim, s.n_kv_heads, s.norm_eps, (s.d_model,)
    layers = [
        [w.detach() for w in (b.attention_norm.weight, b.attention.wq.weight)]
        + [w.detach() for w in (b.attention.wk.weight, b.attention.wv.weight)]
        + [w.detach() for w in (b.attention.wo.weight, b.mlp_norm.weight)]
        + [w.detach() for w in (b.mlp.w1.weight, b.mlp.w3.weight, b.mlp.w2.weight)]
        for b in model.layers
    ]
    emb, norm, out = (
        model.tok_embeddings.weight.detach(),
        model.norm.weight.detach(),
        model.output.weight.detach(),
    )
    keys = [torch.zeros(batch_size, kv, max_len, hd) for _ in layers]
    values = [torch.zeros(batch_size, kv, max_len, hd) for _ in layers]
    inv_freq = 1.0 / s.rope_theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd)
    angles = torch.arange(max_len, dtype=torch.float32)[:, None] * inv_freq[None]
    cos_t = torch.cat((angles.cos(), angles.cos()), -1)
    sin_t = torch.cat((-angles.sin(), angles.sin()), -1)

    def step(token: torch.Tensor, pos: int) -> torch.Tensor:
        x = F.embedding(token, emb)
        cos, sin = cos_t[pos], sin_t[pos]
        for (an, wq, wk, wv, wo, mn, w1, w3, w2), k_c, v_c in zip(
            layers, keys, values, strict=True
        ):
            h = F.rms_norm(x, shape, an, eps)
            q = F.linear(h, wq).view(batch_size, kv, -1, hd)  # (B, kv, g, hd): heads kv*g + j
            k = F.linear(h, wk).view(batch_size, kv, 1, hd)
            q = q * cos + q.roll(hd // 2, -1) * sin
            k_c[:, :, pos : pos + 1] = k * cos + k.roll(hd // 2, -1) * sin
            v_c[:, :, pos : pos + 1] = F.linear(h, wv).view(batch_size, kv, 1, hd)
            a = F.scaled_dot_product_attention(q, k_c[:, :, : pos + 1], v_c[:, :, : pos + 1])
            x = x + F.linear(a.reshape(batch_size, 1, -1), wo)
            h = F.rms_norm(x, shape, mn, eps)
            x = x + F.linear(F.silu(F.linear(h, w1)) * F.linear(h, w3), w2)
        return F.linear(F.rms_norm(x, shape, norm, eps), out).argmax(-1)

    return step


def run_plain(step: Step, last: torch.Tensor, positions: range) -> tuple[torch.Tensor, float]:
    """Greedy tokens of the plain loop from ``last`` over ``positions``, and its CPU seconds."""
    start, token, out = time.process_time(), last, []
    for pos in positions:
        token = step(token, pos)
        out.append(token)
    return torch.cat(out, 1), time.process_time() - start


def plain_loop(args: argparse.Namespace) -> None:
    spec = resolve_arch(
        cli.load_model_preset(cli.CONF_DIR / "model" / "tiny.yaml"),
        BudgetConfig(n_params=500_000),
        4096,
    ).spec
    prompt, new = args.prompt_tokens, args.new_tokens
    print(
        f"\n1. lean decode loop vs a plain loop: tiny shape (d{spec.d_model} L{spec.n_layers} "
        f"h{spec.n_heads}/{spec.n_kv_heads} ff{spec.d_ff}), T_in {prompt}, T_out {new}, "
        f"{args.loop_repeats} interleaved repeats, process CPU time per step"
    )
    print(f"{'B':>3} {'project ms':>11} {'plain ms':>9} {'speed (median)':>15} {'(best)':>7}")
    model = build_model(spec, CPU, "fp32", seed=0)
    for batch in (1, 4):
        prompts = torch.randint(spec.vocab_size, (batch, prompt))
        decoder = Decoder(model, batch, prompt, new, "none")
        step = plain_step(model, batch, prompt + new)
        with torch.inference_mode():
            decoder.prefill(prompts)
            for pos in range(prompt - 1):  # the plain loop fills its cache one token at a time
                step(prompts[:, pos : pos + 1], pos)

            ours, theirs = [], []
            for _ in range(args.loop_repeats):
                generated, seconds = decoder.generate(prompts[:, -1:], time.process_time)
                ours.append(seconds / new)
                reference, seconds = run_plain(
                    step, prompts[:, -1:], range(prompt - 1, prompt - 1 + new)
                )
                theirs.append(seconds / new)
        assert torch.equal(generated, reference), "the plain loop must generate the same tokens"
        speed = statistics.median(theirs) / statistics.median(ours)
        print(
            f"{batch:>3} {statistics.median(ours) * 1e3:>11.3f} "
            f"{statistics.median(theirs) * 1e3:>9.3f} {speed:>14.2f}x "
            f"{min(theirs) / min(ours):>6.2f}x"
        )


def accuracy_shapes() -> list[ArchSpec]:
    """Seven shapes at N ~ 4M, 4 layers, head_dim 32: d_model, r and g varied."""

    def shape(d_model: int, r: float, g: int) -> ArchSpec:
        spec = shape_for(4_000_000, 4, 32, r, g, 4096, d_model=d_model, d_ff_multiple=16).spec
        return spec

    knobs = [(256, 1.0, 1), (256, 1.0, 2), (256, 1.0, 4), (256, 0.5, 4), (256, 3.0, 4)]
    knobs += [(192, 1.0, 2), (384, 2.0, 4)]
    return [shape(*k) for k in knobs]


def cpu_accuracy(args: argparse.Namespace) -> None:
    """Calibration 1 timed interleaved with the shapes it predicts (the same load on both), then
    calibration 2 on its own right after it."""
    prompt, new = args.prompt_tokens_cpu, args.new_tokens
    shapes = [Probe(s, b, prompt, new) for b in args.batch_sizes for s in accuracy_shapes()]
    print(
        f"\n2. calibrated CPU profile ({torch.get_num_threads()} thread(s), fp32, eager): "
        f"{len(CPU_PROBES)} probes and {len(shapes)} shapes (T_in {prompt}, T_out {new}) timed "
        f"in {args.calibration_repeats} interleaved rounds, process CPU time, round-normalized "
        "medians"
    )
    start = time.perf_counter()
    times = time_steps([*CPU_PROBES, *shapes], CPU, "fp32", "none", args.calibration_repeats)
    first = fit_times(CPU_PROBES, times[: len(CPU_PROBES)], CPU, "fp32", "none")
    measured, _ = round_normalized(times)  # the shapes' steps, relative to the same rounds
    print(f"calibration 1 ({time.perf_counter() - start:.0f} s wall with the shapes): ", end="")
    print(describe_fit(first))
    start = time.perf_counter()
    second = calibrate_profile(CPU, "fp32", repeats=args.calibration_repeats)
    print(f"calibration 2 ({time.perf_counter() - start:.0f} s wall): {describe_fit(second)}")
    print(
        f"{'shape':<26} {'r':>5} {'g':>2} {'B':>2} {'measured':>9} {'cal 1':>8} {'err':>6} "
        f"{'cal 2':>8} {'err':>6} {'1 vs 2':>6} {'bound':>8}"
    )
    errors, drift = [], []
    for probe, step_s in zip(shapes, measured[len(CPU_PROBES) :], strict=True):
        spec, batch = probe.spec, probe.batch_size
        tokens_per_s = batch / step_s
        predicted = [
            estimate_decode(spec, p, batch, prompt, new, "fp32").tokens_per_s
            for p in (first.profile, second.profile, first.profile.bound())
        ]
        err = [p / tokens_per_s - 1 for p in predicted[:2]]
        errors.append(err[0])
        drift.append(predicted[1] / predicted[0] - 1)
        print(
            f"{probe.label:<26} {describe(spec)['r_mlp_attn']:>5.2f} {spec.gqa_group:>2} "
            f"{batch:>2} {tokens_per_s:>9.1f} {predicted[0]:>8.1f} {err[0]:>+6.1%} "
            f"{predicted[1]:>8.1f} {err[1]:>+6.1%} {drift[-1]:>+6.1%} {predicted[2]:>8.1f}"
        )
    print(
        f"calibration 1 predicts every shape within {max(abs(e) for e in errors):.1%} (target "
        f"25%); calibrations 1 and 2 differ by at most {max(abs(d) for d in drift):.1%} "
        "(target 10%)"
    )


def describe_fit(fit: ProfileFit) -> str:
    record = fit.profile.fit
    return (
        f"{describe_profile(fit.profile, 'fp32')}; probes fitted within "
        f"{fit.max_abs_rel_error:.0%}; spread over repeats median "
        f"{record['median_spread_over_repeats']:.0%}, max {record['max_spread_over_repeats']:.0%} "
        f"(before removing round-wide load: median {record['median_raw_spread_over_repeats']:.0%})"
    )


def h100_fit() -> None:
    steps = read_decode_table()
    fit = fit_h100(steps)
    print(
        "\n3. h100_measured on the H100 table (CUDA-graph steps, T 4608): "
        f"{describe_profile(fit.profile, 'bf16')}"
    )
    print(f"{'row':<22} {'measured ms':>11} {'predicted':>10} {'error':>7} {'floor ms':>9}")
    for step, predicted, error in zip(steps, fit.predicted_s, fit.rel_errors, strict=True):
        bound = predict_steps(get_profile("h100_sxm"), [step], "bf16")[0]
        print(
            f"{step.label:<22} {step.step_s * 1e3:>11.3f} {predicted * 1e3:>10.3f} "
            f"{error:>+7.1%} {bound * 1e3:>9.3f}"
        )
    llama = [s for s in steps if s.spec is H100_SHAPES["llama-3.2-1b"]]
    surefire = [s for s in steps if s.spec is H100_SHAPES["surefire-1b"]]
    datasheet = get_profile("h100_sxm")
    print(f"{'B':>4} {'Surefire/LLaMA measured':>24} {'h100_measured':>14} {'datasheet':>10}")
    for a, b in zip(llama, surefire, strict=True):
        ours = (
            predict_steps(fit.profile, [a], "bf16")[0] / predict_steps(fit.profile, [b], "bf16")[0]
        )
        bound = predict_steps(datasheet, [a], "bf16")[0] / predict_steps(datasheet, [b], "bf16")[0]
        print(f"{a.batch_size:>4} {a.step_s / b.step_s:>24.3f} {ours:>14.3f} {bound:>10.3f}")
    for train, test, name in ((llama, surefire, "LLaMA"), (surefire, llama, "Surefire")):
        other = fit_h100(train).profile
        errors = [
            p / s.step_s - 1 for p, s in zip(predict_steps(other, test, "bf16"), test, strict=True)
        ]
        print(
            f"fitted on {name} only: the other shape's steps within "
            f"{max(abs(e) for e in errors):.1%} ({', '.join(f'{e:+.1%}' for e in errors)})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="CPU threads")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8], help="B values")
    parser.add_argument("--prompt-tokens", type=int, default=128, help="T_in of part 1")
    parser.add_argument("--prompt-tokens-cpu", type=int, default=512, help="T_in of part 2")
    parser.add_argument("--new-tokens", type=int, default=16, help="T_out generated")
    parser.add_argument(
        "--loop-repeats", type=int, default=21, help="timed repeats of part 1 (median)"
    )
    parser.add_argument(
        "--calibration-repeats", type=int, default=9, help="calibration rounds of part 2"
    )
    parser.add_argument("--skip-cpu", action="store_true", help="only the H100 fit (part 3)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.skip_cpu:
        plain_loop(args)
        cpu_accuracy(args)
    h100_fit()


if __name__ == "__main__":
    main()

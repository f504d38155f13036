"""Time the law fits of issue 3 on public data and print the figures.

Run from the repository root: ``python benchmarks/bench_fit.py [--repeat 3] [--bootstrap 100]``.
Epoch AI's Chinchilla data is read from ``../shared/data`` and skipped when absent; the MIT sets
ship in ``tests/data``.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from archsearch.law import FitResult, fit_law, from_csv

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
MORPH = ROOT / "tests" / "data" / "open-lm-morph" / "morph_losses.csv"
GADRE = ROOT / "tests" / "data" / "gadre-overtraining" / "gadre_losses.csv"
GADRE_SMALL = ("d=96_l=8_h=4", "d=512_l=8_h=4", "d=576_l=24_h=8", "d=1024_l=24_h=8")


def timed(fn: Callable[[], FitResult], repeat: int) -> tuple[FitResult, float, float]:
    """Best wall and CPU seconds over ``repeat`` calls, with the last result."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return result, min(walls), min(cpus)


def column(path: Path, name: str, where: dict[str, str] | None = None) -> np.ndarray:
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if all(r[k] == v for k, v in (where or {}).items())]
    return np.array([r[name] for r in rows])


def bench_epoch(repeat: int, n_bootstrap: int) -> None:
    path = SHARED / "epoch-chinchilla" / "svg_extracted_data.csv"
    if not path.exists():
        print(f"epoch-chinchilla: skipped ({path} absent)")
        return
    data = from_csv(path, {"N": "Model Size", "C": "Training FLOP"})
    data = data.select(data.loss < np.sort(data.loss)[-5])
    result, wall, cpu = timed(lambda: fit_law(data, "chinchilla", fitter="huber"), repeat)
    p = result.params
    print(
        f"epoch-chinchilla Huber(1e-3), {result.settings['n_starts']} starts scored, "
        f"{result.settings['n_refined']} refined: {wall:.2f} s wall, {cpu:.2f} s CPU\n"
        f"  A {p['A']:.2f}  B {p['B']:.2f}  E {p['E']:.4f}  alpha {p['alpha']:.4f}  "
        f"beta {p['beta']:.4f}  objective {result.objective:.11f}\n"
        "  Epoch AI: A 477.84  B 2143.86  E 1.8172  alpha 0.3473  beta 0.3672  0.00101827403"
    )
    if n_bootstrap:
        boot, wall, _ = timed(
            lambda: fit_law(data, "chinchilla", fitter="huber", n_bootstrap=n_bootstrap), 1
        )
        ci = {k: boot.intervals[k] for k in ("A", "B", "E", "alpha", "beta")}
        text = "  ".join(f"{k} [{lo:.4g}, {hi:.4g}]" for k, (lo, hi) in ci.items())
        print(f"  with {n_bootstrap} bootstrap refits: {wall:.2f} s wall; 95% CI {text}")


def bench_morph(repeat: int) -> None:
    data = from_csv(MORPH, {"N": "N_total", "D": "D_tokens", "scale": "size_class"})
    marked = column(MORPH, "used_in_paper_fit") == "True"
    for form, published in (
        ("aspect_ratio", "0.0006 / 0.9982"),
        ("chinchilla_tied", "0.0033 / 0.9895"),
    ):
        result, wall, _ = timed(lambda f=form: fit_law(data.select(marked), f), repeat)
        pred = result.predict_data(data)
        mse = np.mean((pred - data.loss) ** 2)
        r2 = 1 - np.sum((pred - data.loss) ** 2) / np.sum((data.loss - data.loss.mean()) ** 2)
        print(
            f"open-lm-morph {form} (LM, 27 rows): {wall:.3f} s; all 76 rows MSE {mse:.5f} "
            f"R^2 {r2:.4f} (published {published})"
        )


def bench_gadre(repeat: int) -> None:
    where = {"train_dataset": "rpj"}
    columns = {"N": "N_total", "D": "D_tokens", "loss": "loss_c4_val", "scale": "model_shape"}
    data = from_csv(GADRE, columns, where)
    mult = column(GADRE, "chinchilla_multiplier", where)
    rows = (np.isin(data.scale, GADRE_SMALL) & (mult == "1.0")) | (
        (data.scale == GADRE_SMALL[0]) & (mult == "16.0")
    )
    result, wall, _ = timed(lambda: fit_law(data.select(rows), "chinchilla_tied"), repeat)
    errors = []
    for shape, m in (("open_lm_1b", "32.0"), ("open_lm_7b", "1.0")):
        target = data.select((data.scale == shape) & (mult == m))
        errors.append(100 * abs(result.predict_data(target)[0] / target.loss[0] - 1))
    print(
        f"gadre-overtraining rpj (LM, 5 rows): {wall:.3f} s; extrapolation error "
        f"1.4B {errors[0]:.4f}%  6.9B {errors[1]:.4f}% (published 0.7103% / 0.7320%)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timing repeats (best is printed)")
    parser.add_argument("--bootstrap", type=int, default=100, help="Epoch bootstrap refits")
    args = parser.parse_args()
    bench_epoch(args.repeat, args.bootstrap)
    bench_morph(args.repeat)
    bench_gadre(args.repeat)


if __name__ == "__main__":
    main()

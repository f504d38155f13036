"""A Hydra app whose "training" returns losses from a known conditional law plus noise.

It composes the real ``conf/train.yaml`` and resolves each proposed shape exactly as training
does, so the sweeper plugin is exercised end to end without spending minutes per job:

    python tests/sweeper/known_law_app.py -m hydra/sweeper=archsearch ...

True optimum: x* = A2 / A1 = 0.08, r* = B2 / B1 = 1.2 (Eq. 3, arXiv 2510.18245).
"""

from __future__ import annotations

import hashlib
import math

from archsearch import cli
from archsearch.arch import describe
from archsearch.config import RunConfig, resolve_arch
from archsearch.records import RunRecord

A0, A1, A2 = 1.15, 0.1, 0.008
B1, B2 = 0.05, 0.06
L_OPT = 3.0
NOISE = 0.002


def known_loss(x: float, r: float) -> float:
    return (A0 + A1 * math.log(x) + A2 / x) * (1 + B1 * math.log(r) + B2 / r) * L_OPT


def fake_train(cfg: RunConfig) -> RunRecord:
    arch = resolve_arch(cfg.model, cfg.budget, cfg.data.vocab_size)
    derived = describe(arch.spec)
    name = cli.output_dir().name
    # deterministic noise per shape, so reruns and resumed sweeps see the same loss
    unit = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 16**8
    loss = known_loss(derived["d_over_sqrt_n"], derived["r_mlp_attn"]) + NOISE * (2 * unit - 1)
    return RunRecord(
        run_id=name,
        arch=arch.spec.to_dict(),
        n_params=int(derived["non_embedding_params"]),
        total_params=int(derived["total_params"]),
        embedding_params=0,
        r_mlp_attn=derived["r_mlp_attn"],
        d_over_sqrt_n=derived["d_over_sqrt_n"],
        gqa_group=arch.spec.gqa_group,
        train_tokens=arch.train_tokens,
        train_flops=0.0,
        steps=1,
        final_val_loss=loss,
        final_train_loss=loss,
        wall_time_s=0.0,
        tokens_per_s=0.0,
        seed=cfg.train.seed,
        backend="known_law",
        device="none",
        dataset="none",
    )


cli.register_run_groups()

if __name__ == "__main__":
    cli.run("train", fake_train)

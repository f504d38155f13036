"""The study's job list: requests whole heads cannot reach at their rounded d_model move to the
nearest d_model that can (``grid.d_model_search``), keeping the requested knobs."""

from __future__ import annotations

import math

from archsearch.arch import d_over_sqrt_n, r_mlp_attn
from archsearch.config import ModelConfig, RunConfig
from archsearch.study.config import GridConfig, SearchSettings, StudyConfig
from archsearch.study.jobs import sweep_jobs


def _config(d_model_search: int) -> StudyConfig:
    model = ModelConfig(n_layers=4, head_dim=16, d_model_multiple=4, d_ff_multiple=4)
    grid = GridConfig(
        scales=[141_000, 200_000],
        tokens_per_param=20.0,
        d_over_sqrt_n=[0.19],
        r_mlp_attn=[3.0],
        gqa_groups=[],
        x_center=0.19,
        r_center=1.0,
        group=2,
        d_model_search=d_model_search,
    )
    return StudyConfig(run=RunConfig(model=model), grid=grid, search=SearchSettings(batch_size=4))


def test_unreachable_request_moves_to_the_nearest_reachable_d_model() -> None:
    strict, skipped = sweep_jobs(_config(0))
    assert any(
        s.startswith("n141000_x0.19_r3_g2: r_mlp_attn=3.0 is not reachable") for s in skipped
    )
    moved, _ = sweep_jobs(_config(3))
    job = next(j for j in moved if j.name == "n141000_x0.19_r3_g2")
    assert job.name not in {j.name for j in strict}
    spec = job.spec()
    rounded = round(0.19 * math.sqrt(141_000) / 4) * 4
    assert spec.d_model != rounded and abs(spec.d_model - rounded) <= 3 * 4
    assert job.request == (0.19, 3.0, 2)  # the arm it belongs to, not the moved x
    assert abs(r_mlp_attn(spec) / 3.0 - 1) <= 0.25
    assert abs(d_over_sqrt_n(spec) - 0.19) < 0.05
    # a request reachable as asked is not moved
    same = {j.name: j.spec() for j in strict}
    assert all(j.spec() == same[j.name] for j in moved if j.name in same)

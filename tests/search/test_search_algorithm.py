"""Algorithm 1 on the paper's Task-3 law at the LLaMA-3.2-1B budget: optimum, front, constraint."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from search_helpers import LLAMA, LLAMA_D, LLAMA_N, task3_law

from archsearch.arch import ArchSpec, non_embedding_params
from archsearch.records import BatchThroughput, ThroughputRecord
from archsearch.search import (
    DecodeSetting,
    Target,
    ThroughputModel,
    candidate_for,
    d_model_grid,
    dominates,
    enumerate_space,
    gqa_search,
    pareto_front,
    r_grid,
    search,
    spec_key,
)
from archsearch.throughput import get_profile

SETTING = DecodeSetting(get_profile("a100_40gb"), batch_size=64)
TOL = 0.05


@pytest.fixture(scope="module")
def space():
    return enumerate_space(
        LLAMA_N,
        16,
        64,
        128256,
        d_model_grid(LLAMA_N, 0.02, 0.25),
        r_grid(0.5, 5.0, 60),
        [4],
        tie_embeddings=True,
        n_params_tolerance=TOL,
    )


@pytest.fixture(scope="module")
def result(space):
    return search(task3_law(), space, LLAMA_N, LLAMA_D, ThroughputModel(SETTING), target=LLAMA)


def test_space_is_feasible_and_distinct(space):
    assert len(space.candidates) > 1000 and space.n_infeasible < space.n_grid_points
    keys = {spec_key(c.spec) for c in space.candidates}
    assert len(keys) == len(space.candidates)
    for c in space.candidates[::50]:
        assert non_embedding_params(c.spec) == c.n_params
        assert abs(c.n_params / LLAMA_N - 1) <= TOL and c.spec.n_heads == 4 * c.spec.n_kv_heads


def test_task3_loss_optimum(result):
    # Continuous optimum x* = a2/a1 = 0.0801, r* = b2/b1 = 1.032. Honest tolerances: d_model moves
    # in steps of 64 (x steps of 0.002 at sqrt(N) = 31,194) and whole heads with n_kv = S/5
    # move r in steps of about 10% near r = 1.
    assert task3_law().optimum == pytest.approx({"x": 0.0801, "r": 1.0317}, abs=1e-3)
    pick = result.loss_optimal.candidate
    assert abs(pick.x - 0.0801) < 0.003
    assert abs(pick.r - 1.032) < 0.06
    assert abs(pick.n_params_rel_error) <= TOL
    assert non_embedding_params(pick.spec) == pick.n_params
    assert pick.spec.d_model % 64 == 0 and pick.spec.d_ff % 64 == 0
    assert result.loss_optimal.loss == min(s.loss for s in result.scored)


def test_pareto_front_feasible_and_non_dominated(result):
    front = result.front
    assert len(front) >= 10
    points = [(s.rank_loss, s.speed.tokens_per_s) for s in front]
    for i, a in enumerate(points):
        assert not any(dominates(b, a) for j, b in enumerate(points) if j != i)
    everyone = [(s.rank_loss, s.speed.tokens_per_s) for s in result.scored]
    for a in points[:: max(1, len(points) // 10)]:
        assert not any(dominates(b, a) for b in everyone)
    for s in front:
        assert abs(s.candidate.n_params_rel_error) <= TOL
    assert front[0].candidate == result.loss_optimal.candidate


def test_constraint_honoured_and_best_is_fastest(result):
    target = result.target
    assert target.loss == pytest.approx(result.target.scored.loss)
    fastest = result.fastest_meeting_target
    assert fastest.loss <= target.loss and fastest.meets
    ok = [s for s in result.scored if s.loss <= target.loss]
    assert fastest.speed.tokens_per_s == max(s.speed.tokens_per_s for s in ok)
    gain = fastest.speed.tokens_per_s / target.scored.speed.tokens_per_s - 1
    assert gain > 0.2  # the paper reports up to 42% over LLaMA-3.2-1B
    assert result.gqa.to_train[0].name == fastest.candidate.name  # baseline group not trained yet


def test_a_pick_slower_than_the_target_is_said(space, result):
    assert not any("faster than the target" in n for n in result.notes)  # LLaMA: picks are faster
    small = ArchSpec(256, 2, 4, 1, 64, 512, 128256, tie_embeddings=True, name="tiny_reference")
    target = Target("tiny reference", 10.0, source="measured", spec=small)
    slower = search(task3_law(), space, LLAMA_N, LLAMA_D, ThroughputModel(SETTING), target=target)
    fastest = slower.fastest_meeting_target
    assert fastest.speed.tokens_per_s < slower.target.scored.speed.tokens_per_s
    assert any(
        "no candidate meeting L_t decodes faster than the target tiny reference" in n
        for n in slower.notes
    )


def test_numeric_target_and_quantile_constraint(space):
    law = task3_law()
    scale = [[1.0 if name == "a0" else 1 + 0.03 * k for name in law.params] for k in range(-5, 6)]
    boot = np.asarray(scale) * np.asarray(list(law.params.values()))
    law = replace(law, bootstrap=boot.tolist())
    loose = search(law, space, LLAMA_N, LLAMA_D, ThroughputModel(SETTING), target=2.56)
    strict = search(
        law, space, LLAMA_N, LLAMA_D, ThroughputModel(SETTING), target=2.56, constraint_quantile=0.9
    )
    assert (
        loose.fastest_meeting_target.loss <= 2.56
        and strict.fastest_meeting_target.rank_loss <= 2.56
    )
    assert all(s.loss_low <= s.loss <= s.loss_high for s in loose.scored[::100])
    assert (
        strict.fastest_meeting_target.speed.tokens_per_s
        <= loose.fastest_meeting_target.speed.tokens_per_s
    )
    assert strict.fastest_meeting_target.p_meets >= 0.9 - 1e-9
    assert (
        search(
            law, space, LLAMA_N, LLAMA_D, ThroughputModel(SETTING), target=1.0
        ).fastest_meeting_target
        is None
    )


def test_pareto_front_unit():
    loss = [3.0, 2.0, 2.0, 2.5, 1.0, 3.0]
    speed = [10.0, 5.0, 6.0, 6.0, 1.0, 10.0]
    assert pareto_front(loss, speed) == [4, 2, 0]


def _throughput_record(spec, decode_s, decode_cpu_s=None, device="cuda"):
    """A measurement at batch 64, T_in 4096, T_out 1024 in bf16: wall seconds of each repeat's
    generation, and process CPU seconds where given (a CPU measurement)."""
    prefill_cpu_s = None if decode_cpu_s is None else [0.5] * len(decode_s)
    batch = BatchThroughput.from_times(
        64, 1024, [1.0] * len(decode_s), decode_s, None, None, prefill_cpu_s, decode_cpu_s
    )
    return ThroughputRecord(
        run_id=spec.name,
        arch=spec.to_dict(),
        counts={},
        prompt_tokens=4096,
        new_tokens=1024,
        batch_sizes=[64],
        repeats=len(decode_s),
        warmup=0,
        dtype="bf16",
        device=device,
        backend="torch",
        step_mode="none" if device == "cpu" else "cuda_graph",
        batches=[batch],
    )


def test_cpu_measurements_rank_by_cpu_time_not_wall_clock():
    """Two shapes whose wall-clock figures (slowed by load) and CPU-time figures disagree: CPU
    records rank by CPU time, GPU records by wall clock."""
    space = enumerate_space(LLAMA_N, 16, 64, 128256, [2048, 2560], [1.0], [4], tie_embeddings=True)
    narrow, wide = (c.spec for c in space.candidates)
    wall = {narrow: [1.0, 1.1, 1.3], wide: [2.0, 2.2, 2.1]}  # seconds: narrow faster
    cpu = {narrow: [0.8, 0.9, 0.85], wide: [0.5, 0.55, 0.6]}  # wide faster

    def fastest(records, **kw):
        model = ThroughputModel(SETTING, records, **kw)
        result = search(task3_law(), space, LLAMA_N, LLAMA_D, model, target=10.0)
        return result, result.fastest_meeting_target

    on_cpu = [_throughput_record(s, wall[s], cpu[s], "cpu") for s in (narrow, wide)]
    result, pick = fastest(on_cpu)
    assert pick.candidate.spec == wide and result.throughput_measure == "cpu_time_median"
    assert pick.speed.tokens_per_s == pytest.approx(64 * 1024 / 0.55)  # the median repeat
    assert (pick.speed.tokens_per_s_min, pick.speed.tokens_per_s_max) == pytest.approx(
        (64 * 1024 / 0.6, 64 * 1024 / 0.5)
    )
    entry = json.loads(json.dumps(result.to_dict()))
    assert entry["throughput_measure"] == "cpu_time_median"
    assert {s["speed"]["tokens_per_s_max"] for s in entry["scored"]} == {
        64 * 1024 / 0.5,
        64 * 1024 / 0.8,
    }
    result, pick = fastest(on_cpu, measure="wall_median")
    assert pick.candidate.spec == narrow and result.throughput_measure == "wall_median"
    on_gpu = [_throughput_record(s, wall[s]) for s in (narrow, wide)]
    result, pick = fastest(on_gpu)
    assert pick.candidate.spec == narrow and result.throughput_measure == "wall_median"
    with pytest.raises(ValueError, match="no CPU-time figures"):
        ThroughputModel(SETTING, on_gpu, measure="cpu_time_median")
    result, pick = fastest([on_cpu[0], on_gpu[1]])  # one record without CPU times: all by wall
    assert pick.candidate.spec == narrow and result.throughput_measure == "wall_median"
    assert any("1 of 2 measured shapes have no CPU-time figures" in n for n in result.notes)
    old_cpu = [_throughput_record(s, wall[s], None, "cpu") for s in (narrow, wide)]
    result, pick = fastest(old_cpu)  # CPU records without CPU times (schema 1): wall, said so
    assert pick.candidate.spec == narrow and result.throughput_measure == "wall_median"
    assert any("2 of 2 measured shapes have no CPU-time figures" in n for n in result.notes)
    assert fastest([])[0].throughput_measure is None


def test_measured_throughput_and_gqa_early_stop():
    spec = candidate_for(LLAMA, LLAMA_N).spec  # S = 40: groups 1, 3, 4, 7, 9, 19, 39
    model = ThroughputModel(SETTING, [_throughput_record(spec, [64 * 1024 / 1234.0])])
    assert model(spec).tokens_per_s == 1234.0 and model(spec).source == "measured"
    variants = {v.candidate.gqa_group: v for v in gqa_search(spec, LLAMA_N, model, {}).steps}
    g7 = replace(spec, n_heads=35, n_kv_heads=5)
    g9 = replace(spec, n_heads=36, n_kv_heads=4)
    g19 = replace(spec, n_heads=38, n_kv_heads=2)
    losses = {spec_key(spec): 2.60, spec_key(g7): 2.59, spec_key(g9): 2.62, spec_key(g19): 2.58}
    result = gqa_search(spec, LLAMA_N, ThroughputModel(SETTING), losses)
    status = {s.candidate.gqa_group: s.status for s in result.steps}
    assert status == {
        4: "baseline",
        7: "accepted",
        9: "rejected",
        19: "not_reached",
        39: "not_reached",
    }
    assert result.chosen.gqa_group == 7 and result.to_train == []
    assert set(variants) == {1, 3, 4, 7, 9, 19, 39}
    pending = gqa_search(spec, LLAMA_N, ThroughputModel(SETTING), {spec_key(spec): 2.60})
    assert [c.gqa_group for c in pending.to_train] == [7]

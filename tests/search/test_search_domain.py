"""The search stays inside what its law knows: validity domain, sane predictions, measured L_t."""

from __future__ import annotations

import json

import numpy as np
import pytest
from search_helpers import CHINCHILLA, LLAMA, LLAMA_D, LLAMA_N, ROOT, TASK3, record_for

from archsearch.law import FitResult, fit_law, from_csv
from archsearch.records import RunRecord, write_record
from archsearch.search import (
    DecodeSetting,
    Proposal,
    SearchSpaceConfig,
    ThroughputModel,
    d_model_grid,
    enumerate_space,
    law_at_budget,
    r_grid,
    search,
    space_from_config,
)
from archsearch.search.__main__ import load_target
from archsearch.search.config import SearchRunConfig
from archsearch.search.report import format_table
from archsearch.throughput import get_profile

SPEED = ThroughputModel(DecodeSetting(get_profile("a100_40gb"), batch_size=64))
DOMAIN = {"x": (0.04, 0.12), "r": (0.5, 5.0)}
MORPH_CSV = ROOT / "tests" / "data" / "open-lm-morph" / "morph_losses.csv"  # a copy of shared/data


def task3(domain=DOMAIN) -> FitResult:
    return FitResult.from_params("multiplicative", TASK3, l_opt=CHINCHILLA, domain=domain)


def wide_space(**kw):
    cfg = SearchSpaceConfig(x_min=0.02, x_max=0.25, r_max=8.0, **kw)
    return space_from_config(cfg, LLAMA_N, 16, 64, 128256, 4, tie_embeddings=True)


@pytest.fixture(scope="module")
def space():
    return wide_space()


def test_achieved_r_respects_the_bound_not_a_tolerance_above_it():
    loose = enumerate_space(
        LLAMA_N, 16, 64, 128256, d_model_grid(LLAMA_N, 0.02, 0.25), r_grid(0.5, 5.0, 60), [4]
    )
    bounded = space_from_config(
        SearchSpaceConfig(x_min=0.02, x_max=0.25), LLAMA_N, 16, 64, 128256, 4, tie_embeddings=False
    )
    assert max(c.r for c in loose.candidates) > 5.0  # rounding to whole heads steps past r_max
    assert max(c.r for c in bounded.candidates) <= 5.0
    assert all(0.02 <= c.x <= 0.25 for c in bounded.candidates)


def test_task3_throughput_pick_stays_in_the_domain(space):
    result = search(task3(), space, LLAMA_N, LLAMA_D, SPEED, target=LLAMA)
    pick = result.fastest_meeting_target
    assert pick is not None and pick.in_domain
    assert 0.04 <= pick.candidate.x <= 0.12 and 0.5 <= pick.candidate.r <= 5.0
    assert pick.loss <= result.target.loss
    assert all(s.in_domain for s in result.scored)  # nothing outside was scored
    assert any("outside the law's domain" in n and "not scored" in n for n in result.notes)
    # a looser target: still the fastest shape inside, never one outside
    loose = search(task3(), space, LLAMA_N, LLAMA_D, SPEED, target=2.60)
    assert loose.fastest_meeting_target.in_domain
    assert loose.fastest_meeting_target.loss <= 2.60


def test_extrapolate_marks_out_of_domain_picks(space, tmp_path):
    from archsearch.search.report import plot_contour, plot_pareto

    result = search(task3(), space, LLAMA_N, LLAMA_D, SPEED, target=2.60, extrapolate=True)
    pick = result.fastest_meeting_target
    assert not pick.in_domain and pick.loss <= 2.60
    assert pick.outside and ("r" in pick.outside[0] or "x" in pick.outside[0])
    inside = search(task3(), space, LLAMA_N, LLAMA_D, SPEED, target=2.60).fastest_meeting_target
    assert pick.speed.tokens_per_s > inside.speed.tokens_per_s
    table = format_table(result)
    assert f"{pick.candidate.name}*" in table and "outside the law's validity domain" in table
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["fastest_meeting_target"]["in_domain"] is False
    assert summary["fastest_meeting_target"]["outside"] == pick.outside
    assert summary["extrapolate"] is True and summary["domain"]["x"] == [0.04, 0.12]
    marked = {s["candidate"]["spec"]["name"] for s in summary["scored"] if not s["in_domain"]}
    assert pick.candidate.name in marked and len(marked) < len(summary["scored"])
    assert plot_pareto(result, tmp_path / "p.png").stat().st_size > 0
    assert plot_contour(result, tmp_path / "c.png").stat().st_size > 0


def test_law_without_a_domain_still_keeps_r_at_most_5(space):
    result = search(task3(domain=None), space, LLAMA_N, LLAMA_D, SPEED, target=LLAMA)
    assert max(s.candidate.r for s in result.scored) <= 5.0
    assert any("records no validity domain" in n for n in result.notes)


def test_refuses_laws_without_architecture_terms_or_positive_predictions(space):
    chinchilla = FitResult.from_params("chinchilla", CHINCHILLA)
    with pytest.raises(ValueError, match="no architecture terms"):
        search(chinchilla, space, LLAMA_N, LLAMA_D, SPEED, target=2.6)
    negative = FitResult.from_params(
        "multiplicative", {**TASK3, "a0": -2.697}, l_opt=CHINCHILLA, domain=DOMAIN
    )
    with pytest.raises(ValueError, match="non-positive loss"):
        search(negative, space, LLAMA_N, LLAMA_D, SPEED)


def test_open_lm_morph_fit_gives_no_negative_loss(space):
    columns = {
        "N": "N_nonembed",
        "D": "D_tokens",
        "x": "d_over_sqrtN_nonembed",
        "r": "r_mlp_attn",
        "scale": "size_class",
    }
    law = fit_law(from_csv(MORPH_CSV, columns), "multiplicative")
    # r in [2, 2.25] only: the r terms have no interior optimum, and the fit says so
    assert law.domain["r"] == [2.0, 2.25]
    assert any("no interior optimum in r" in w for w in law.warnings)
    # unbounded, this law predicted -1.27 nats for its loss-optimal pick at the 1B budget
    everywhere = law_at_budget(law, LLAMA_N, LLAMA_D)[0].predict(
        LLAMA_N, LLAMA_D, x=[c.x for c in space.candidates], r=[c.r for c in space.candidates]
    )
    assert everywhere.min() < 0
    result = search(law, space, LLAMA_N, LLAMA_D, SPEED, target=LLAMA)
    assert min(s.loss for s in result.scored) > 0 and result.loss_optimal.loss > 0
    assert all(2.0 <= s.candidate.r <= 2.25 for s in result.scored)
    assert any("not scored" in n for n in result.notes)
    assert "no interior optimum in r" in format_table(result)
    # scored outside the domain, the law goes negative there: those shapes are dropped, said so
    wild = search(law, space, LLAMA_N, LLAMA_D, SPEED, target=LLAMA, extrapolate=True)
    assert min(s.loss for s in wild.scored) > 0
    assert any("non-positive loss" in n and "dropped" in n for n in wild.notes)


def _record(tmp_path, loss: float, tokens: int) -> RunRecord:
    """A finished LLaMA-3.2-1B run (N 973.1M, x 0.066, r 4.8, g 4) at ``tokens``."""
    llama = Proposal("llama_100b", LLAMA.to_dict(), 973_078_528, 0.066, 4.8, 4, "target")
    rec = record_for(llama, loss, tokens)
    write_record(tmp_path / "llama", rec)
    return rec


def test_target_is_a_measured_loss(tmp_path, space):
    rec = _record(tmp_path, 2.803, LLAMA_D)
    cfg = SearchRunConfig(target="2.803")
    given = load_target(cfg, [], LLAMA_D)
    assert (given.loss, given.source) == (2.803, "given")
    from_file = load_target(SearchRunConfig(target=str(tmp_path / "llama" / "record.json")), [], 0)
    assert (from_file.loss, from_file.source, from_file.spec.d_model) == (2.803, "measured", 2048)
    preset = SearchRunConfig(target="llama3_2_1b")
    measured = load_target(preset, [rec], LLAMA_D)
    assert (measured.loss, measured.source) == (2.803, "measured")
    assert "llama_100b" in measured.detail
    assert load_target(preset, [rec], 2 * LLAMA_D) == LLAMA  # no record at this D: the shape
    result = search(task3(), space, LLAMA_N, LLAMA_D, SPEED, target=measured)
    assert result.target.loss == 2.803 and result.target.scored is not None
    assert "L_t = 2.8030 (measured: final_val_loss of run(s) llama_100b)" in format_table(result)
    fallback = search(task3(), space, LLAMA_N, LLAMA_D, SPEED, target=LLAMA)
    assert fallback.target.source == "predicted"
    assert fallback.target.loss == pytest.approx(fallback.target.scored.loss)
    assert np.isclose(
        json.loads(json.dumps(fallback.to_dict()))["target"]["loss"], 2.5753, atol=1e-3
    )

"""The fitters reproduce published fits on public data (DESIGN.md section 5)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from law_helpers import GADRE_CSV, csv_column, morph, shared

from archsearch.law import fit_law, from_csv

GADRE_SMALL = ("d=96_l=8_h=4", "d=512_l=8_h=4", "d=576_l=24_h=8", "d=1024_l=24_h=8")


def epoch_data():
    path = shared("epoch-chinchilla") / "svg_extracted_data.csv"
    data = from_csv(path, {"N": "Model Size", "C": "Training FLOP"})
    return data.select(data.loss < np.sort(data.loss)[-5])  # Epoch drops the 5 highest losses


def test_epoch_chinchilla_grid_fit_reproduces_epoch_constants():
    data = epoch_data()
    start = time.perf_counter()
    result = fit_law(data, "chinchilla", fitter="huber", delta=1e-3)
    elapsed = time.perf_counter() - start
    p = result.params
    assert len(data) == 240 and result.settings["n_starts"] == 4500
    assert p["alpha"] == pytest.approx(0.3473, abs=2e-3)
    assert p["beta"] == pytest.approx(0.3672, abs=2e-3)
    assert p["E"] == pytest.approx(1.8172, abs=2e-3)
    assert p["A"] == pytest.approx(477.8, rel=0.02)
    assert p["B"] == pytest.approx(2143.0, rel=0.05)
    assert result.objective <= 0.00101827403 * (1 + 1e-6)  # Epoch's "replicate exactly" optimum
    assert elapsed < 10.0


def test_open_lm_morph_aspect_ratio_law_beats_chinchilla():
    data, marked = morph()
    assert marked.sum() == 27 and len(data) == 76
    scores = {}
    for form in ("aspect_ratio", "chinchilla_tied"):
        result = fit_law(data.select(marked), form, fitter="lm")
        pred = result.predict_data(data)
        mse = np.mean((pred - data.loss) ** 2)
        r2 = 1 - np.sum((pred - data.loss) ** 2) / np.sum((data.loss - data.loss.mean()) ** 2)
        scores[form] = (mse, r2)
    assert scores["aspect_ratio"][0] <= 0.0006 and scores["aspect_ratio"][1] >= 0.998
    assert scores["chinchilla_tied"][0] == pytest.approx(0.0033, abs=1e-4)
    assert scores["chinchilla_tied"][1] == pytest.approx(0.9895, abs=1e-3)
    assert scores["aspect_ratio"][0] < scores["chinchilla_tied"][0]


def test_gadre_overtraining_extrapolation_errors():
    """5 RedPajama runs, tied law, LM; relative error at 1.4B (M = 640) and 6.9B (M = 20)."""
    columns = {"N": "N_total", "D": "D_tokens", "loss": "loss_c4_val", "scale": "model_shape"}
    data = from_csv(GADRE_CSV, columns, where={"train_dataset": "rpj"})
    mult = csv_column(GADRE_CSV, "chinchilla_multiplier", {"train_dataset": "rpj"})
    fit_rows = (np.isin(data.scale, GADRE_SMALL) & (mult == "1.0")) | (
        (data.scale == GADRE_SMALL[0]) & (mult == "16.0")
    )
    assert fit_rows.sum() == 5
    result = fit_law(data.select(fit_rows), "chinchilla_tied", fitter="lm")
    for shape, m, published in (("open_lm_1b", "32.0", 0.7103), ("open_lm_7b", "1.0", 0.7320)):
        target = data.select((data.scale == shape) & (mult == m))
        assert len(target) == 1
        err = 100 * abs(result.predict_data(target)[0] / target.loss[0] - 1)
        assert err == pytest.approx(published, abs=0.05)

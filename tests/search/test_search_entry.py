"""`python -m archsearch.search`: the `law=<file>` rewrite, fit -> search -> train."""

from __future__ import annotations

import json

from search_helpers import run, write_synthetic_csv

from archsearch.search.__main__ import law_file_overrides


def test_law_file_override_rewrite(tmp_path):
    fit_dir = tmp_path / "fit"
    fit_dir.mkdir()
    assert law_file_overrides(
        ["law=a/fit.json", f"law={fit_dir}", "law=multiplicative", "x=1"]
    ) == ["law_file=a/fit.json", f"law_file={fit_dir}", "law=multiplicative", "x=1"]


def test_fit_then_search_then_train_compose(tmp_path):
    csv_path = write_synthetic_csv(tmp_path / "runs.csv")
    fit_dir, out = tmp_path / "fit", tmp_path / "search"
    proc = run(
        "-m",
        "archsearch.fit",
        f"input={csv_path}",
        "law=multiplicative",
        "law.n_bootstrap=5",
        "plots=false",
        f"hydra.run.dir={fit_dir}",
    )
    assert proc.returncode == 0, proc.stderr
    proc = run(
        "-m",
        "archsearch.search",
        f"law={fit_dir / 'fit.json'}",
        "budget=llama1b_20x",
        "target=llama3_2_1b",
        "space.n_r=20",
        f"hydra.run.dir={out}",
    )
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout
    assert "Chinchilla fitted on the law's data" in table  # best-observed L_opt has no 1B entry
    words = ("target", "fastest_meeting_target", "loss_optimal", "front", "pred. loss", "gain")
    for word in (*words, "gqa search", "law domain: x [0.04, 0.16], r [0.6, 4]"):
        assert word in table
    # no trained record of the preset: L_t is the law's prediction, and says so
    assert "PREDICTED by the law, a fallback: no trained record of llama3_2_1b" in table
    summary = json.loads((out / "search.json").read_text())
    assert summary["target"]["source"] == "predicted"
    # which profile ranked the shapes: a100_40gb has no measured profile, so its datasheet bound
    assert summary["throughput_profile"]["source"] == "datasheet"
    assert summary["throughput_profile"]["label"] in table
    assert summary["fastest_meeting_target"]["in_domain"] and summary["loss_optimal"]["in_domain"]
    assert len(summary["front"]) >= 3
    assert (out / "pareto.png").stat().st_size > 0 and (out / "contour.png").stat().st_size > 0
    name = summary["fastest_meeting_target"]["name"]
    assert (out / "model" / f"{name}.yaml").is_file()
    proc = run(
        "-m",
        "archsearch.train",
        "--config-dir",
        str(out),
        f"model={name}",
        "budget=llama1b_20x",
        "--cfg",
        "job",
    )
    assert proc.returncode == 0, proc.stderr
    assert f"name: {name}" in proc.stdout and "r_mlp_attn: null" in proc.stdout

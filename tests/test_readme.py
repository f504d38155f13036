"""The README as a newcomer runs it: every ```bash block, in order, on CPU.

A block is skipped only when the line right above its opening fence is
``<!-- docs-test: skip (<reason>) -->`` (a GPU, a cluster, an install or an hour is needed).

Mechanism: the blocks run as bash scripts (``set -euo pipefail``), one after another, in one
temporary copy of the repository (``python`` is this interpreter, ``PYTHONPATH`` the copy), so
their ``outputs/`` land there and later blocks read what earlier ones wrote, as they would for a
user. The copy's presets are shrunk so that each training job takes seconds, without changing any
command or run-directory name: ``conf/budget/tiny.yaml`` gets ``train_tokens: 4096`` (N and every
shape stay the README's) and ``conf/train/cpu.yaml`` gets ``eval_tokens: 4096``,
``num_threads: 1`` and ``progress: false``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]
SKIP = re.compile(r"<!-- docs-test: skip \((.+)\) -->")
SHRUNK = {
    "conf/budget/tiny.yaml": {"train_tokens": 4096},
    "conf/train/cpu.yaml": {"eval_tokens": 4096, "num_threads": 1, "progress": False},
}
BLOCK_TIMEOUT_S = 300
HEADLINE = "python -m archsearch.train -m model.hidden=1024,2048"


def bash_blocks(text: str) -> list[tuple[int, str, str | None]]:
    """Every ```bash block of ``text``: (line number, body, skip reason or None)."""
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```bash":
            start = i
            above = SKIP.search(lines[i - 1]) if i > 0 else None
            i += 1
            body = []
            while lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            blocks.append((start + 1, "\n".join(body), above.group(1) if above else None))
        i += 1
    return blocks


BLOCKS = bash_blocks((REPO / "README.md").read_text())


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A copy of the repository with shrunk presets, and the environment to run blocks in it."""
    root = tmp_path_factory.mktemp("readme") / "archsearch"
    shutil.copytree(
        REPO,
        root,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "outputs", "__pycache__", "*.egg-info", ".pytest_cache", "build"
        ),
    )
    for name, values in SHRUNK.items():
        cfg = OmegaConf.load(root / name)
        OmegaConf.save(OmegaConf.merge(cfg, values), root / name)
    bin_dir = root.parent / "bin"
    bin_dir.mkdir()
    python = bin_dir / "python"  # a wrapper, not a symlink: a venv is found from its own path
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(root),
        "HYDRA_FULL_ERROR": "0",
    }
    return root, env


def run_bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT_S,
    )


@pytest.mark.parametrize(("line", "body", "skip"), BLOCKS, ids=[f"line{b[0]}" for b in BLOCKS])
def test_readme_block_runs(
    line: int, body: str, skip: str | None, sandbox: tuple[Path, dict[str, str]]
) -> None:
    if skip is not None:
        pytest.skip(f"README line {line}: {skip}")
    root, env = sandbox
    done = run_bash(body, root, env)
    assert done.returncode == 0, (
        f"README line {line}:\n{body}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )


def test_headline_command_prints_one_message_with_commands_that_run(
    sandbox: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """On the default CPU config the headline sweep stops before any job with one message (no
    traceback) that names the smallest budget preset where both widths fit and a CPU sweep; the
    CPU sweep it prints then runs (in the sandbox) and ends with the sweep table; run again, it
    says each job finished earlier."""
    root, env = sandbox
    # the repository's own presets (the sandbox's shrunk D would make other commands cheap);
    # not from the sandbox's directory, which `python -m` puts first on the path
    done = run_bash(HEADLINE, tmp_path, {**env, "PYTHONPATH": str(REPO)})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "2 of 2 jobs cannot be built" in done.stderr
    assert f"{HEADLINE.replace('hidden', 'd_model')} budget=llama1b_20x train=gpu" in done.stderr
    assert not (tmp_path / "outputs").exists()
    lines = done.stderr.splitlines()
    cpu_at = next(i for i, s in enumerate(lines) if s.startswith("On a CPU in minutes a job"))
    command = lines[cpu_at + 1].strip()
    assert command.startswith("python -m archsearch.train -m model.d_model=")
    ran = run_bash(command, root, env)
    assert ran.returncode == 0, ran.stderr[-3000:]
    widths = command.rpartition("=")[2].split(",")
    assert f"{len(widths)} runs of this sweep" in ran.stdout
    again = run_bash(command, root, env)  # the same command again trains nothing
    assert again.stdout.count("(finished earlier, skipped)") == len(widths)


def test_by_hand_install_equals_make() -> None:
    """The README's by-hand install names exactly the extras the Makefile installs."""
    extras = re.search(r"^EXTRAS \?= (\S+)$", (REPO / "Makefile").read_text(), re.M)
    assert extras is not None
    assert f"pip install -e '.[{extras.group(1)}]'" in (REPO / "README.md").read_text()


def test_bash_blocks_are_found_with_their_markers() -> None:
    text = "a\n```bash\necho 1\n```\n<!-- docs-test: skip (needs a GPU) -->\n```bash\nx\n```\n"
    assert bash_blocks(text) == [(2, "echo 1", None), (6, "x", "needs a GPU")]

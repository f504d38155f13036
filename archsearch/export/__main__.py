"""``python -m archsearch.export <run dir> [--out DIR] [--dtype bfloat16] [--max-len N]``.

Writes ``config.json``, ``model.safetensors``, ``tokenizer.json`` and ``tokenizer_config.json``
(default into ``<run dir>/hf``), loadable with ``transformers.AutoModelForCausalLM`` and servable
by vLLM or SGLang. Needs the ``hf`` extra (``pip install 'archsearch[hf]'``).
"""

from __future__ import annotations

import argparse

from archsearch.export import ARCHITECTURES


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m archsearch.export", description=__doc__)
    parser.add_argument("run_dir", help="a finished training run's directory (record.json)")
    parser.add_argument("--out", default=None, help="output directory (default <run dir>/hf)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--max-len", type=int, default=None, help="default: training seq_len")
    parser.add_argument("--architecture", default="auto", choices=ARCHITECTURES)
    args = parser.parse_args(argv)
    from archsearch.export.hf import export_run

    out = export_run(args.run_dir, args.out, args.dtype, args.max_len, args.architecture)
    print(f"exported {args.run_dir} -> {out}")


if __name__ == "__main__":
    main()

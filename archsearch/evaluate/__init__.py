"""Downstream evaluation through lm-evaluation-harness, offline (the paper's accuracy comparison).

``ArchsearchLM`` (``lm.py``) is lm-eval's ``LM`` over the project's own model and tokenizer;
``evaluate_run`` (``harness.py``) scores a trained run on tasks and writes ``<run dir>/eval.json``.
The shipped tasks (``tasks/*.jsonl`` + ``*.yaml``, built by ``tasks.py``) are multiple choice over
held-out speeches of the bundled corpus; any task lm-eval knows (``arc_easy``, ``hellaswag``,
``piqa``, ...) runs through the same entry on a machine whose Hugging Face cache holds its data.
Needs the ``eval`` extra.
"""

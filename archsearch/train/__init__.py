"""Training: ``train(cfg, run_dir) -> RunRecord`` (torch backend), resumable from the run dir.

Run it with ``python -m archsearch.train`` (Hydra; ``-m`` for a sweep) or call ``train`` directly.
"""

from archsearch.train.loop import train

__all__ = ["train"]

"""Training: ``train(cfg, run_dir) -> RunRecord`` (torch or megatron backend), resumable from the
run directory, in one process or one per device.

Run it with ``python -m archsearch.train`` (Hydra; ``-m`` for a sweep) or call ``train`` directly.
"""

from archsearch.train.loop import train

__all__ = ["train"]

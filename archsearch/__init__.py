"""archsearch: find LLM architectures that are accurate and fast to serve (arXiv 2510.18245).

Layers (an arrow is "may import"): pure ``arch``, ``records``, ``law``, ``search``;
``model`` -> arch; ``data``; ``train`` -> model, data, records; ``throughput`` -> model; ``track``.
Entry points: ``python -m archsearch.train|fit|search|throughput``.
Importing this package imports nothing heavy.
"""

__version__ = "0.1.0"

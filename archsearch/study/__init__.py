"""The end-to-end study: the paper's pipeline at tiny scale with a report (arXiv 2510.18245).

``python -m archsearch.study`` (``--quick`` for the smoke variant) trains a sweep at several
budgets, measures decode throughput, fits and evaluates the conditional law, searches at the
largest budget against a LLaMA-3.2-shaped baseline, trains the picks and writes
``outputs/study/<name>/report/``. Modules: ``config`` and ``analysis`` (pure), ``jobs``,
``pipeline`` (stages, the finals' head-to-head decode), ``picks``, ``downstream``, ``run``
(``run_study``), ``report``, ``plots``.
"""

"""The ``hydra/sweeper=archsearch`` plugin: rounds of propose -> launch -> refit (issue 6).

Hydra imports every non-underscore module here when it scans for plugins, so they stay light; the
work is in ``_impl``, imported only when a sweep starts.
"""

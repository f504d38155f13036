#!/usr/bin/env bash
# The whole test suite, as `make test` and CI (.ci/run) run it. Extra arguments go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}

"$PY" -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then  # pytest: no tests collected (e.g. a -k that matched nothing)
  echo "pytest collected no tests"
  rc=0
fi
exit "$rc"

#!/usr/bin/env bash
# The whole test suite, as `make test` and CI (.ci/run) run it. Extra arguments go to pytest.
#
# Tests marked `slurm` need a cluster: unless ARCHSEARCH_SLURM=0, this starts the single-node one
# of launchers/start_local_slurm.sh (installing slurm-wlm and munge first when root and missing),
# exports its SLURM_CONF, and stops it on exit if it started it. A cluster that cannot start makes
# the slurm tests skip with the reason, or fail when CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}

export SLURM_BASE=${SLURM_BASE:-${TMPDIR:-/tmp}/slurm-local-$(id -un)}
if [ "${ARCHSEARCH_SLURM:-1}" = 1 ]; then
  if SLURM_CONF="$SLURM_BASE/etc/slurm.conf" scontrol ping 2>/dev/null | grep -q 'is UP'; then
    echo "tests/run.sh: using the SLURM cluster already running in $SLURM_BASE"
  elif SLURM_INSTALL=$([ "$(id -u)" = 0 ] && echo 1 || echo 0) launchers/start_local_slurm.sh; then
    trap 'launchers/stop_local_slurm.sh || true' EXIT
  else
    echo "tests/run.sh: no SLURM cluster (see above): slurm tests will skip, or fail if CI=true" >&2
  fi
  if [ -f "$SLURM_BASE/env.sh" ]; then
    # shellcheck source=/dev/null  # written by start_local_slurm.sh
    source "$SLURM_BASE/env.sh"
  fi
fi

rc=0
"$PY" -m pytest "$@" || rc=$?
if [ "$rc" -eq 5 ]; then  # pytest: no tests collected (e.g. a -k that matched nothing)
  echo "pytest collected no tests"
  rc=0
fi
exit "$rc"

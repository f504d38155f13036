#!/usr/bin/env bash
# stop_local_slurm.sh - stop what start_local_slurm.sh started (same user, same SLURM_BASE).
#
# Cancels leftover jobs, shuts the controller down, then makes sure by pid file (never by process
# name). A munged that was already running before the start script is left alone.
# --purge also deletes $SLURM_BASE (job state, logs) and, as root, the /etc/slurm/slurm.conf link.
set -euo pipefail
T0=$(date +%s.%N)
elapsed() { awk -v a="$(date +%s.%N)" -v b="$T0" 'BEGIN{printf "%.2fs", a-b}'; }
log() { echo "[stop_local_slurm +$(elapsed)] $*" >&2; }
export PATH="$PATH:/usr/sbin:/sbin"

ME=$(id -un)
IS_ROOT=0; [ "$(id -u)" = 0 ] && IS_ROOT=1
BASE=${SLURM_BASE:-${TMPDIR:-/tmp}/slurm-local-$ME}
export SLURM_CONF="$BASE/etc/slurm.conf"
PURGE=0; [ "${1:-}" = --purge ] && PURGE=1

pid_of() { [ -s "$1" ] && cat "$1"; }  # prints the pid in a pid file, if any
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
pids=()
# munged.pid exists only when start_local_slurm.sh started munged (not for a system munged)
for f in slurmctld slurmd munged; do
  p=$(pid_of "$BASE/run/$f.pid" || true)
  if alive "$p"; then pids+=("$p"); fi
done

if [ -f "$SLURM_CONF" ] && alive "$(pid_of "$BASE/run/slurmctld.pid" || true)"; then
  # cancel leftover jobs so no slurmstepd or job process outlives the daemons
  jobs=$(timeout 10 squeue -h -o %A 2>/dev/null | tr '\n' ' ' || true)
  if [ -n "${jobs// /}" ]; then
    log "cancelling jobs: $jobs"
    # shellcheck disable=SC2086  # one argument per job id
    scancel $jobs 2>/dev/null || true
    for _ in $(seq 1 100); do [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break; sleep 0.1; done
  fi
  if timeout 10 scontrol shutdown >/dev/null 2>&1; then log "scontrol shutdown sent"; fi
fi
for p in "${pids[@]}"; do
  if kill -TERM "$p" 2>/dev/null; then log "SIGTERM pid $p"; fi
done

# wait up to 20 s for everything to exit, then SIGKILL the stragglers (still by pid)
for _ in $(seq 1 200); do
  left=(); for p in "${pids[@]}"; do alive "$p" && left+=("$p"); done
  [ ${#left[@]} -eq 0 ] && break
  sleep 0.1
done
for p in "${left[@]}"; do alive "$p" && { log "SIGKILL pid $p"; kill -9 "$p" || true; }; done
rm -f "$BASE"/run/*.pid
if [ $IS_ROOT = 1 ] && [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null || true)" = "$SLURM_CONF" ]; then
  rm -f /etc/slurm/slurm.conf
fi
if [ $PURGE = 1 ]; then
  rm -rf "$BASE"
  log "purged $BASE"
fi
log "stopped"

#!/usr/bin/env bash
# start_local_slurm.sh - idempotently start a single-node SLURM cluster on this machine.
#
#   munged -> slurmctld -> slurmd, then waits until the node is idle (about a second).
#
# No accounting (no slurmdbd/MariaDB: `sacct` does not answer, which submitit tolerates) and no
# cgroups (works in containers without systemd). The node advertises more CPUs than it has, so
# several tiny jobs share a small machine. Works as root (the system munged on /run/munge, and
# /etc/slurm/slurm.conf symlinked so plain `sbatch` works) and as an ordinary user (private munged,
# daemons and jobs run as that user, ports +10000). Tested on Debian 12 (slurm-wlm 22.05.8,
# munge 0.5.15) adapted from the recipe in ../shared/reference/.
#
# Environment knobs (all optional):
#   SLURM_BASE=${TMPDIR:-/tmp}/slurm-local-$USER  state, spool, logs, conf, pid files, env.sh
#   SLURM_INSTALL=0|1       1 (root only): apt-get install slurm-wlm and munge when missing
#   SLURM_CPUS=<n>          CPUs to advertise (default: the real count, at least 8)
#   SLURM_PARTITION=debug   partition name (conf/hydra/launcher/local_slurm.yaml uses debug)
#   SLURMCTLD_PORT/SLURMD_PORT  6817/6818 as root, +10000 otherwise
#   SLURM_CRED_EXPIRE=10    credential lifetime: also how long a requeued job waits to restart
#   SLURM_START_TIMEOUT=60  seconds to wait for readiness
#
# Afterwards:  source "$SLURM_BASE/env.sh"  (exports SLURM_CONF). Stop with stop_local_slurm.sh.
set -euo pipefail

T0=$(date +%s.%N)
elapsed() { awk -v a="$(date +%s.%N)" -v b="$T0" 'BEGIN{printf "%.2fs", a-b}'; }
log() { echo "[start_local_slurm +$(elapsed)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

ME=$(id -un)
IS_ROOT=0; [ "$(id -u)" = 0 ] && IS_ROOT=1
BASE=${SLURM_BASE:-${TMPDIR:-/tmp}/slurm-local-$ME}
PARTITION=${SLURM_PARTITION:-debug}
TIMEOUT=${SLURM_START_TIMEOUT:-60}
PORT_OFF=$(( IS_ROOT ? 0 : 10000 ))
CTLD_PORT=${SLURMCTLD_PORT:-$((6817 + PORT_OFF))}
SLURMD_PORT=${SLURMD_PORT:-$((6818 + PORT_OFF))}
HOST=$(hostname -s)
# a requeued job may start again only after the credential lifetime (default 120 s)
CRED_EXPIRE=${SLURM_CRED_EXPIRE:-10}
export PATH="$PATH:/usr/sbin:/sbin"

# ---------------------------------------------------------------- packages
need_pkgs=()
for b in slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge; do
  command -v "${b%%:*}" >/dev/null 2>&1 || need_pkgs+=("${b#*:}")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "${SLURM_INSTALL:-0}" != 1 ] || [ $IS_ROOT != 1 ]; then
    die "missing packages: ${need_pkgs[*]} (apt-get install slurm-wlm munge, or SLURM_INSTALL=1 as root)"
  fi
  APT_LOG="${TMPDIR:-/tmp}/start_local_slurm.apt.log"
  log "installing slurm-wlm munge (log: $APT_LOG)"
  # a plain install (recommends included) is what was tested; update only if the index is stale
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >"$APT_LOG" 2>&1 ||
    { apt-get update -q >>"$APT_LOG" 2>&1 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >>"$APT_LOG" 2>&1; } ||
    die "apt-get failed, see $APT_LOG"
fi

mkdir -p "$BASE"/{etc,state,spool,log,run}
chmod 755 "$BASE"
CONF="$BASE/etc/slurm.conf"
export SLURM_CONF="$CONF"

# ---------------------------------------------------------------- munge
if [ $IS_ROOT = 1 ]; then
  MUNGE_SOCK=/run/munge/munge.socket.2
  MUNGE_KEY=/etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge; chmod 755 /run/munge
  [ -s "$MUNGE_KEY" ] || runuser -u munge -- mungekey --create --keyfile="$MUNGE_KEY"
  MUNGED=(runuser -u munge -- munged)
  MUNGE_PID=/run/munge/munged.pid
  AUTHINFO="AuthInfo=cred_expire=$CRED_EXPIRE"
else
  MUNGE_DIR="$BASE/munge"; mkdir -p "$MUNGE_DIR"; chmod 755 "$MUNGE_DIR"  # socket dir needs o+x
  MUNGE_SOCK="$MUNGE_DIR/munge.socket.2"
  MUNGE_KEY="$MUNGE_DIR/munge.key"
  [ -s "$MUNGE_KEY" ] || mungekey --create --keyfile="$MUNGE_KEY"
  chmod 600 "$MUNGE_KEY"
  MUNGE_PID="$MUNGE_DIR/munged.pid"
  MUNGED=(munged --key-file="$MUNGE_KEY" --pid-file="$MUNGE_PID"
          --log-file="$MUNGE_DIR/munged.log" --seed-file="$MUNGE_DIR/munged.seed")
  AUTHINFO="AuthInfo=socket=$MUNGE_SOCK,cred_expire=$CRED_EXPIRE"
fi
munge_ok() { munge -n -S "$MUNGE_SOCK" </dev/null 2>/dev/null | unmunge -S "$MUNGE_SOCK" >/dev/null 2>&1; }
if munge_ok; then
  log "munged already running ($MUNGE_SOCK)"
else
  rm -f "$MUNGE_SOCK" "$MUNGE_SOCK.lock"
  "${MUNGED[@]}" --socket="$MUNGE_SOCK" || die "munged failed to start"
  for _ in $(seq 1 50); do munge_ok && break; sleep 0.1; done
  munge_ok || die "munged not answering on $MUNGE_SOCK"
  # stop_local_slurm.sh stops the munged that this script started, never a system one
  cp "$MUNGE_PID" "$BASE/run/munged.pid"
  log "munged started"
fi

# ---------------------------------------------------------------- slurm.conf
# `slurmd -C` prints what slurmd detects; RealMemory above it would drain the node.
read -r REAL_CPUS REAL_MEM < <(slurmd -C 2>/dev/null | head -1 |
  sed -n 's/.*CPUs=\([0-9]*\).*RealMemory=\([0-9]*\).*/\1 \2/p')
REAL_CPUS=${REAL_CPUS:-$(nproc)}; REAL_MEM=${REAL_MEM:-1024}
CPUS=${SLURM_CPUS:-$(( REAL_CPUS < 8 ? 8 : REAL_CPUS ))}
MEM=$(( REAL_MEM * 95 / 100 ))
OVERRIDES=""
# more CPUs than detected: slurmd must trust slurm.conf instead of draining the node
[ "$CPUS" -gt "$REAL_CPUS" ] && OVERRIDES="SlurmdParameters=config_overrides"
NEWCONF=$(cat <<CONF
# generated by launchers/start_local_slurm.sh
ClusterName=local
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=$ME
SlurmdUser=$ME
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
$AUTHINFO
StateSaveLocation=$BASE/state
SlurmdSpoolDir=$BASE/spool
SlurmctldPidFile=$BASE/run/slurmctld.pid
SlurmdPidFile=$BASE/run/slurmd.pid
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd.log
# no cgroups: works in any container or VM without systemd; jobs are tracked by process tree
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# with *_Memory and no default, every job would get the whole node's memory
DefMemPerCPU=1024
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SchedulerType=sched/backfill
# default batch_sched_delay=3 => sbatch jobs start 0-3 s after submission; 0 => ~0-1 s.
# Requeued jobs wait for their BeginTime, which only the periodic passes notice (60 s, 30 s).
SchedulerParameters=batch_sched_delay=0,sched_interval=2,bf_interval=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$BASE/log/jobcomp.txt
$OVERRIDES
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
)
CONF_CHANGED=0
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$NEWCONF" ]; then
  printf '%s\n' "$NEWCONF" >"$CONF"; CONF_CHANGED=1
fi
chmod 644 "$CONF"
if [ $IS_ROOT = 1 ]; then
  mkdir -p /etc/slurm
  if [ -e /etc/slurm/slurm.conf ] && [ ! -L /etc/slurm/slurm.conf ]; then
    mv /etc/slurm/slurm.conf "/etc/slurm/slurm.conf.bak.$(date +%s)"
  fi
  ln -sfn "$CONF" /etc/slurm/slurm.conf
fi
# shellcheck disable=SC2016  # $PATH is expanded where env.sh is sourced
printf 'export SLURM_CONF=%q\nexport PATH="$PATH:/usr/sbin:/sbin"\n' "$CONF" >"$BASE/env.sh"

# ---------------------------------------------------------------- slurmctld + slurmd
pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
ctld_up() { scontrol ping 2>/dev/null | grep -q 'is UP'; }
if ctld_up; then
  log "slurmctld already running"
  if [ $CONF_CHANGED = 1 ]; then log "slurm.conf changed: scontrol reconfigure"; scontrol reconfigure; fi
else
  slurmctld -i || die "slurmctld failed, see $BASE/log/slurmctld.log"
  for _ in $(seq 1 $((TIMEOUT * 10))); do
    ctld_up && break
    if [ -s "$BASE/run/slurmctld.pid" ] && ! pid_alive "$BASE/run/slurmctld.pid"; then
      die "slurmctld exited: $(grep fatal "$BASE/log/slurmctld.log" | tail -1)"
    fi
    sleep 0.1
  done
  ctld_up || die "slurmctld not answering, see $BASE/log/slurmctld.log"
  log "slurmctld started"
fi
if pid_alive "$BASE/run/slurmd.pid"; then
  log "slurmd already running"
else
  slurmd || die "slurmd failed, see $BASE/log/slurmd.log"
  log "slurmd started"
fi

# the node may come back DOWN/DRAIN from a previous run: resume it
state=""
for _ in $(seq 1 $((TIMEOUT * 10))); do
  state=$(sinfo -h -n "$HOST" -o %t 2>/dev/null | head -1)
  case "$state" in
    idle|mix|alloc) break ;;
    inval*) die "node $HOST is INVAL: $(sinfo -h -R -o %E 2>/dev/null | head -1)" ;;
    down*|drain*|drng*) scontrol update nodename="$HOST" state=resume 2>/dev/null || true ;;
  esac
  sleep 0.1
done
case "$state" in idle|mix|alloc) ;; *) die "node $HOST is '$state', see $BASE/log/slurmd.log" ;; esac

log "ready: node $HOST $state, CPUs=$CPUS RealMemory=${MEM}M partition=$PARTITION"
echo "SLURM_CONF=$CONF"

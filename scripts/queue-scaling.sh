#!/usr/bin/env bash
# Usage (root): scripts/queue-scaling.sh   [env: P=path/to/pktio SECS=s ROUNDS=n MODES="rxdrop l2fwd" BACKEND=xdp]
# A measurement, not a test. One queue against two on this machine: `pktio MODE --lab
# --backend BACKEND --queues 0` and `--queues 0,1` (each builds its own lab in 198.18.0.0/15,
# a veth with as many queues, one AF_XDP sender per TX queue on CPU 0, and removes it),
# rounds interleaved. Prints each run's total and per-queue Mpps and, over the middle of the
# run, where each CPU's time went (/proc/stat: user, system, softirq, idle; % of the CPU).
set -u
P=${P:-target/release/pktio}; SECS=${SECS:-8}; ROUNDS=${ROUNDS:-3}
MODES=${MODES:-"rxdrop l2fwd"}; BACKEND=${BACKEND:-xdp}
OUT=$(mktemp -d); trap 'rm -rf "$OUT"' EXIT
stat_cpus() { grep -E '^cpu[0-9]+ ' /proc/stat; }
breakdown() { # before after
  paste -d' ' "$1" "$2" | awk '{
    n=$1; u=$13+$14-$2-$3; s=$15-$4; i=$16+$17-$5-$6; irq=$18-$7; si=$19-$8; st=$20-$9;
    t=u+s+i+irq+si+st; if (t==0) t=1;
    printf "    %s: user %4.1f%%  system %4.1f%%  softirq %4.1f%%  irq %4.1f%%  idle %4.1f%%\n",
      n, 100*u/t, 100*s/t, 100*si/t, 100*irq/t, 100*i/t }'
}
for r in $(seq "$ROUNDS"); do
  for mode in $MODES; do
    for q in 0 0,1; do
      f=$OUT/$mode-$q-$r.json
      $P "$mode" --lab --backend "$BACKEND" --queues "$q" -d "$SECS" --json "$f" >/dev/null 2>"$OUT/err" &
      pid=$!
      sleep $((SECS / 4 + 1)); stat_cpus > "$OUT/s0"
      sleep $((SECS / 2)); stat_cpus > "$OUT/s1"
      wait $pid || { echo "$mode --queues $q failed:"; tail -3 "$OUT/err"; continue; }
      python3 - "$f" "$mode" "$q" "$r" <<'PY'
import json,sys
d=json.load(open(sys.argv[1]))
qs=" ".join(f"q{x['queue']}(cpu {x['cpu']}) {x['mpps']:.3f}" for x in d.get("queues",[]))
print(f"round {sys.argv[4]} {sys.argv[2]:6} --queues {sys.argv[3]:4} total {d['mpps']:.3f} Mpps (median/s {d['median_mpps']:.3f}), "
      f"{d['cpu_ns_per_packet']:.0f} ns/packet of loop CPU; {qs}")
PY
      breakdown "$OUT/s0" "$OUT/s1"
    done
  done
done

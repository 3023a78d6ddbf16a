#!/usr/bin/env bash
# Usage (root): scripts/capture-cost.sh   [env: P=path/to/pktio RATE=pps SECS=s ROUNDS=n]
# Builds its own lab (198.18.0.0/15) and removes it. Needs tcpdump. A measurement, not a test.
# CPU per packet attributable to the receive side (vrx's NAPI thread + the capture process)
# at one fixed offered load, for: no capture, tcpdump -w, pktio capture -w (default, AF_PACKET V3),
# pktio capture --steal -w (AF_XDP). Threaded NAPI of vrx pinned to CPU 1, capture pinned to CPU 1,
# generator on CPU 0. Rounds interleave the configurations.
set -u
P=${P:-target/release/pktio}; RATE=${RATE:-300000}; SECS=${SECS:-4}; ROUNDS=${ROUNDS:-3}
L=capc$$
$P lab up --name $L --gro >/dev/null || exit 1
trap '$P lab down --name $L >/dev/null 2>&1; rm -f /dev/shm/capc.pcap' EXIT
before=$(pgrep -f '^\[?napi/vrx' | sort)
ip netns exec $L-gen ethtool -K vgen tso off >/dev/null 2>&1  # veth hands frames to the NAPI only without TSO
ip netns exec $L-rx sh -c "echo 1 > /sys/class/net/vrx/threaded"
NAPI=""  # the kthread that appeared for this lab's vrx (other labs may have a vrx too)
for _ in $(seq 50); do
  NAPI=$(comm -13 <(echo "$before") <(pgrep -f '^\[?napi/vrx' | sort) | head -1)
  [ -n "$NAPI" ] && break; sleep 0.02
done
[ -n "$NAPI" ] || { echo "no NAPI thread appeared for vrx"; exit 1; }
taskset -pc 1 $NAPI >/dev/null
ticks() { awk '{print $14+$15}' /proc/$1/stat; }
tck=$(getconf CLK_TCK)
rxpk() { ip netns exec $L-rx cat /sys/class/net/vrx/statistics/rx_packets; }
run() { # name, capture command (or empty)
  local name=$1; shift
  local cpid=""
  if [ $# -gt 0 ]; then  # started when its socket shows in /proc/net/packet or an XSK is bound
    local s0; s0=$(ip netns exec $L-rx sh -c 'cat /proc/net/packet /proc/net/xdp 2>/dev/null | wc -l')
    ip netns exec $L-rx taskset -c 1 "$@" >/dev/null 2>&1 & cpid=$!
    for _ in $(seq 100); do
      [ "$(ip netns exec $L-rx sh -c 'cat /proc/net/packet /proc/net/xdp 2>/dev/null | wc -l')" -gt "$s0" ] && break; sleep 0.02
    done
    sleep 0.3  # the capture's first poll
  fi
  local n0=$(ticks $NAPI) p0=$(rxpk) c0=0
  [ -n "$cpid" ] && c0=$(cat /proc/$cpid/task/*/stat 2>/dev/null | awk '{s+=$14+$15} END{print s}')
  ip netns exec $L-gen taskset -c 0 $P gen -i vgen --engine xsk -r $RATE -d $SECS -s 64 --take-over >/dev/null 2>&1
  local n1=$(ticks $NAPI) p1=$(rxpk) c1=0
  [ -n "$cpid" ] && c1=$(cat /proc/$cpid/task/*/stat 2>/dev/null | awk '{s+=$14+$15} END{print s}')
  [ -n "$cpid" ] && { kill -INT $cpid; wait $cpid 2>/dev/null; }
  local pk=$((p1-p0))
  awk -v n=$((n1-n0)) -v c=$((c1-c0)) -v pk=$pk -v t=$tck -v name=$name 'BEGIN{printf "%-14s packets %8d  napi %6.0f ns/pkt  capture %6.0f ns/pkt  total %6.0f ns/pkt\n", name, pk, n/t*1e9/pk, c/t*1e9/pk, (n+c)/t*1e9/pk}'
}
for r in $(seq $ROUNDS); do
  run none
  run tcpdump tcpdump -i vrx -w /dev/shm/capc.pcap -n
  run pktio $P capture -i vrx -w /dev/shm/capc.pcap
  run pktio-steal $P capture -i vrx --steal -w /dev/shm/capc.pcap
done

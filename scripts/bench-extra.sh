#!/usr/bin/env bash
# Bench programs beyond 'go test -bench' (latency percentiles, RSS, Python). Each
# part appends itself here.
set -euo pipefail
cd "$(dirname "$0")/.."

# Python reader (brief H6): evaluations/s via the store API and the OpenFeature client
# (vs openfeature-provider-flagd FILE mode), 10k-flag reload, Django view overhead.
mkdir -p var
echo "== python/bench/bench.py"
.venv/bin/python python/bench/bench.py | tee var/bench-python.txt

# Consul and SSM sources (brief H5): Consul change -> watch / Fetch / daemon file
# p50/p99 over 100 changes; SSM API calls and duration per sync of 1,000 parameters
# on moto_server and on the AWS-paging protocol fake. Needs consul (make deps) and
# moto_server (.venv).
mkdir -p var
echo "== sources/consul BenchmarkConsulChangeLatency"
go test -run '^$' -bench 'ConsulChangeLatency' -benchtime=100x ./sources/consul/ | tee var/bench-consul.txt
# Consul change -> file, the daemon and consul-template side by side on one agent
# (goal: daemon p50 and p99 at most consul-template's).
scripts/ensure-consul-template.sh
echo "== sources/consul BenchmarkConsulVsConsulTemplate"
go test -run '^$' -bench 'ConsulVsConsulTemplate' -benchtime=200x ./sources/consul/ | tee var/bench-consul-template.txt
# File source rewritten in place in 4 KB chunks (goal: 0 partial publishes over 1000).
echo "== sources/file BenchmarkInPlaceRewrite"
go test -run '^$' -bench 'InPlaceRewrite' -benchtime=1000x ./sources/file/ | tee var/bench-file-rewrite.txt
echo "== sources/ssm BenchmarkSync"
go test -run '^$' -bench '^BenchmarkSync$' -benchtime=5x ./sources/ssm/ | tee var/bench-ssm.txt

# Daemon (brief H4): sync + publish of 10k flags (goal <= 200 ms/op), watch-triggered
# change visible in file and Redis (goal p99 <= 150 ms over 100 changes, default 100 ms
# debounce), RSS of the built binary serving 10k flags (goal VmHWM <= 64 MB). The
# 'go test -bench' step of make bench already ran them; print the figures, or run
# them here when that output is missing.
echo "== daemon: BenchmarkSync (ns/op), BenchmarkWatchLatency (p50/p99 ms), BenchmarkDaemonRSS (MB)"
if [ -s var/bench-go.txt ] && grep -q '^BenchmarkDaemonRSS' var/bench-go.txt; then
  awk '/^pkg: /{p=($2=="github.com/flagsync/flagsync/daemon")} p && /^Benchmark/' var/bench-go.txt | tee var/bench-daemon.txt
else
  go test -run '^$' -bench '^Benchmark(Sync|WatchLatency|DaemonRSS)$' -benchtime 1x ./daemon/ | tee var/bench-daemon.txt
fi

# Outputs (issue #12 §4, §7): output file deleted -> back (goal <= 1 s), Redis restarted
# empty -> refilled (goal <= 2 s), p50/p99/max over 20 faults each; peak RSS of
# `flagsync run` on the largest input a file source accepts (goal: under the chart's
# 256 Mi memory limit).
echo "== daemon BenchmarkOutputRepair (p50/p99/max ms)"
go test -run '^$' -bench '^BenchmarkOutputRepair$' -benchtime 20x ./daemon/ | tee var/bench-output-repair.txt
echo "== scripts/measure-input-rss.sh (VmHWM of the largest accepted input)"
scripts/measure-input-rss.sh | tee var/bench-input-rss.txt

# Redis topologies (issue #17 §3): publish/read/propagation on one server, Sentinel and
# Cluster; reader catch-up after a Sentinel failover, Go and Python (goal 5 s).
echo "== provider BenchmarkRedisTopology"
go test -run '^$' -bench 'BenchmarkRedisTopology' -benchtime=300x ./provider/ | tee var/bench-redis-topology.txt
echo "== provider BenchmarkRedisFailoverCatchUp"
go test -run '^$' -bench 'BenchmarkRedisFailoverCatchUp' -benchtime=5x ./provider/ | tee var/bench-redis-failover.txt
echo "== python/bench/failover.py"
.venv/bin/python python/bench/failover.py 5 | tee var/bench-python-failover.txt

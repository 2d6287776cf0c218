"""Catch-up of the Python reader after a Redis Sentinel failover (run:
.venv/bin/python python/bench/failover.py [runs]).

Starts a master, a replica and three sentinels on loopback, publishes a generation every
10 ms, SIGKILLs the master and measures how long after the failover completes (the
sentinels name the promoted replica and it answers as master) the RedisStore serves a
generation published after it. Goal: 5 s. Also reports whether the reader's generation
ever went back, whether it stopped serving, and whether Redis held less than what was
replicated before the kill (all must be none).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from redis_topology import RedisSentinelTopology, run_sentinel_failover  # noqa: E402


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    top = RedisSentinelTopology(Path(tempfile.mkdtemp(prefix="flagsync-failover-")))
    top.start()
    lat: list[float] = []
    problems = 0
    try:
        for _ in range(runs):
            r = run_sentinel_failover(top)
            lat.append(r.catch_up)
            problems += len(r.reader_back) + len(r.redis_back) + r.not_serving + (r.floor == 0)
    finally:
        top.stop()
    lat.sort()
    p50 = lat[max(0, round(0.5 * len(lat)) - 1)]
    print(
        f"python reader catch-up after a sentinel failover over {runs} runs: "
        f"p50 {p50 * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms (goal 5000 ms); "
        f"going back / not serving / Redis below replicated: {problems}"
    )


if __name__ == "__main__":
    main()

"""Reload of a 10,000-flag snapshot by the Python reader (run: .venv/bin/python
python/bench/reload.py [--runs N]).

The snapshot is the one Go's BenchmarkReload10k (provider/bench_test.go) loads: flags
shaped like a production set (a third with targeting of four rule shapes, boolean,
string and object variants, owner/description/expiresAt metadata), written as the
daemon publishes it (canonical, metadata.version set). Each run rewrites the file and
times FileStore.check, which reads, parses, validates, compiles, diffs and swaps.

Two reloads are measured: "unchanged", a new publish (generation) of the same flags,
the common case that the reader makes cheap by not checking again what it checked;
and "all changed", where every flag's description differs from the served set, so
every flag is validated and compiled: the worst case.

Prints the median wall and CPU time of a reload, the tracemalloc peak of one reload
(memory it needs beyond what was live before), the memory the new set keeps, and the
garbage collections a reload runs. The cyclic GC stays as the application has it: the
reader does not pause it.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from flagsync import FileStore
from flagsync.canonical import encode_document, revision

RULES = [
    '{"if": [{"in": [{"var": "country"}, ["CH", "DE", "AT", "FR"]]}, "on", '
    '{"fractional": [{"cat": [{"var": "targetingKey"}, "KEY"]}, ["on", 10], ["off", 90]]}]}',
    '{"if": [{"ends_with": [{"var": "email"}, "@teamN.example.com"]}, "on", "off"]}',
    '{"if": [{"sem_ver": [{"var": "appVersion"}, ">=", "2.N.0"]}, "on", '
    '{"<": [{"var": "age"}, 18]}, "off", null]}',
    '{"if": [{"and": [{"==": [{"var": "plan"}, "enterprise"]}, '
    '{">=": [{"var": "seats"}, N]}]}, "on", "off"]}',
]


def realistic_flags(n: int) -> dict[str, Any]:
    """n flags like Go's realisticSnapshot (same keys, variants, metadata and rules)."""
    import json

    flags: dict[str, Any] = {}
    for i in range(n):
        key = f"team{i % 20}.flag_{i:05d}"
        meta: dict[str, Any] = {
            "owner": f"team-{i % 20}",
            "description": f"rollout {i} of the checkout redesign",
        }
        if i % 10 == 0:
            meta["expiresAt"] = "2027-06-30T00:00:00Z"
        variants: dict[str, Any]
        if i % 4 in (0, 1):
            variants = {"on": True, "off": False}
        elif i % 4 == 2:
            variants = {"on": f"blue-{i}", "off": "grey"}
        else:
            variants = {"on": {"limit": i, "mode": "fast"}, "off": {"limit": 0, "mode": "slow"}}
        f: dict[str, Any] = {
            "state": "DISABLED" if i % 50 == 0 else "ENABLED",
            "variants": variants,
            "defaultVariant": "off",
            "metadata": meta,
        }
        if i % 3 == 0:
            rule = RULES[(i // 3) % len(RULES)]
            rule = rule.replace("KEY", key).replace("teamN", f"team{i % 30}")
            rule = rule.replace("2.N.0", f"2.{i % 30}.0").replace(", N]", f", {i % 30}]")
            f["targeting"] = json.loads(rule)
        flags[key] = f
    return flags


def snapshot(flags: dict[str, Any], generation: int) -> bytes:
    """The snapshot as the daemon publishes it: canonical, metadata.version set."""
    meta: dict[str, Any] = {"flagSetId": "test", "flagsync.generation": generation}
    meta["version"] = revision({"flags": flags, "metadata": meta})
    return encode_document({"flags": flags, "metadata": meta})


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--flags", type=int, default=10_000)
    args = ap.parse_args()
    flags = realistic_flags(args.flags)
    print(f"python {sys.version.split()[0]}, {args.flags} flags")
    measure("unchanged", [snapshot(flags, g) for g in (1, 2)], args)
    edited = {
        k: {**f, "metadata": {**f["metadata"], "description": f["metadata"]["description"] + "!"}}
        for k, f in flags.items()
    }
    measure("all changed", [snapshot(flags, 1), snapshot(edited, 2)], args)
    return 0


def measure(name: str, docs: list[bytes], args: argparse.Namespace) -> None:
    """Reload docs[0] and docs[1] in turn, args.runs times, and print the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "flags.json"
        path.write_bytes(docs[0])
        store = FileStore(path, check_interval=3600)
        assert len(store.flags) == args.flags

        def reload(i: int) -> None:
            staged = Path(tmp) / "flags.tmp"
            staged.write_bytes(docs[(i + 1) % 2])
            os.replace(staged, path)
            assert store.check(), "the store did not reload"

        wall, cpu, collections = [], [], []
        for i in range(args.runs):
            before = sum(s["collections"] for s in gc.get_stats())
            t0, c0 = time.perf_counter(), time.process_time()
            reload(i)
            wall.append((time.perf_counter() - t0) * 1e3)
            cpu.append((time.process_time() - c0) * 1e3)
            collections.append(sum(s["collections"] for s in gc.get_stats()) - before)
        assert store.flags.generation in (1, 2) and len(store.flags) == args.flags

        gc.collect()
        tracemalloc.start()
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        reload(args.runs)
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    print(f"{name}: snapshot {len(docs[0]) / 1e6:.2f} MB")
    print(f"  reload wall median  {statistics.median(wall):8.1f} ms  (min {min(wall):.1f})")
    print(f"  reload cpu  median  {statistics.median(cpu):8.1f} ms  (min {min(cpu):.1f})")
    print(f"  tracemalloc peak    {(peak - base) / 1e6:8.2f} MB  (one reload, above what was live)")
    print(
        f"  retained after      {(current - base) / 1e6:8.2f} MB  (new set less the old, after GC)"
    )
    print(f"  gc collections      {statistics.median(collections):8.0f}     per reload (median)")


if __name__ == "__main__":
    sys.exit(main())

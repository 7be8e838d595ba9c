#!/usr/bin/env python3
"""The segment benchmark: SegQL against hand-written SQL in DataFusion and in DuckDB.

Generates the demo shop dataset at the requested scale (once; reused when present), then
times on the same Parquet files, each query in a fresh process:

  (a) each of the 50 segments of bench/segments.seg alone: `segql run --segment NAME`
  (b) all 50 together: `segql count` (sizes, one pass per event table) and `segql run`
      (every member list, in one plan)
  (c) the same 50 as hand-written SQL (bench/sql/NAME.sql) in DataFusion's SQL front end
      (`examples/datafusion_sql.rs`, the same DataFusion version and defaults)
  (d) the same SQL in DuckDB (its Python package), one query per segment

and compares the memberships of (a), (b), (c) and (d): any difference is a failure (exit 1).
Times are medians of --repeat runs, the ways of one segment alternating; memory is each
process's peak resident set size. All 50 together are timed alternating with the slowest
single segment, and their ratio is taken from those runs.
SegQL and DataFusion are timed as whole processes (start-up, reading the Parquet metadata,
planning, running, writing the keys). DuckDB is timed inside its process, from connecting
to having the keys, so Python's start-up does not count against it.

    cargo build --release --bin segql --example datafusion_sql
    pip install duckdb numpy
    python3 scripts/bench_segments.py                        # 1M customers, ~20M events
    python3 scripts/bench_segments.py --customers 10000000   # 10M customers, ~200M events
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLES = ["customers", "purchased", "viewed", "added_to_cart", "email_opened", "ticket_opened"]

DUCKDB_CHILD = r"""
import duckdb, sys, time, json
data, query_file, keys_file = sys.argv[1:4]
sql = open(query_file).read()
started = time.perf_counter()
con = duckdb.connect()
con.execute("SET TimeZone='UTC'")
for t in %r:
    con.execute(f"create view {t} as select * from read_parquet('{data}/{t}.parquet')")
keys = con.execute(sql).fetchnumpy()
elapsed = time.perf_counter() - started
column = keys[next(iter(keys))]
with open(keys_file, "w") as out:
    out.write("".join(f"{k}\n" for k in column.tolist()))
print(json.dumps({"ms": elapsed * 1000, "rows": len(column)}))
""" % (TABLES,)


def run_measured(command):
    """Runs a command with its output discarded; returns (wall seconds, its peak RSS in MB)."""
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        try:
            os.execvp(command[0], [str(c) for c in command])
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(map(str, command))} (run it alone to see why)")
    return wall, usage.ru_maxrss / 1024


def run_output(command):
    """Runs a command; returns (wall seconds, its standard output)."""
    started = time.perf_counter()
    process = subprocess.run([str(c) for c in command], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    stdout = process.stdout
    if process.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, command))}")
    return time.perf_counter() - started, stdout


def segment_names(seg_file):
    return re.findall(r"^segment\s+([A-Za-z_][A-Za-z0-9_]*)", seg_file.read_text(), re.M)


def read_keys(path, header):
    lines = path.read_text().splitlines()
    return set(lines[1:] if header else lines)


def median(values):
    return statistics.median(values)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, help="dataset directory (default: /tmp/segql-bench-N)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--segql", type=Path, default=ROOT / "target/release/segql")
    parser.add_argument("--datafusion-sql", type=Path, default=ROOT / "target/release/examples/datafusion_sql")
    parser.add_argument("--only", help="comma-separated segment names (default: all)")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    args = parser.parse_args()

    for binary in (args.segql, args.datafusion_sql):
        if not binary.exists():
            sys.exit(f"{binary} not found: run `cargo build --release --bin segql --example datafusion_sql` "
                     "or pass --segql/--datafusion-sql")
    try:
        import duckdb  # noqa: F401
        import numpy  # noqa: F401
    except ImportError:
        sys.exit("DuckDB's Python package or numpy is missing: pip install duckdb numpy")

    data = args.data or Path(f"/tmp/segql-bench-{args.customers}")
    if not (data / "customers.parquet").exists():
        print(f"generating {args.customers} customers in {data} ...", flush=True)
        wall, rss = run_measured([args.segql, "demo", "--customers", args.customers, "--out", data])
        print(f"  generated in {wall:.1f} s, peak {rss:.0f} MB")
    # The benchmark's own catalog: the demo's tables without the demo's segment file.
    catalog = data / "bench.toml"
    catalog.write_text("".join(line for line in (data / "segql.toml").read_text().splitlines(True)
                               if not line.startswith("segments")))
    seg_file = ROOT / "bench/segments.seg"
    names = segment_names(seg_file)
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    out = data / "bench-out"
    shutil.rmtree(out, ignore_errors=True)
    for engine in ("segql", "all", "datafusion", "duckdb"):
        (out / engine).mkdir(parents=True)

    segql = [args.segql]
    common = ["--catalog", catalog]
    results = {name: {} for name in names}

    def run_single(name):
        return run_measured(segql + ["run", seg_file, *common, "--segment", name,
                                     "--out", out / "segql" / f"{name}.csv"])

    print(f"{'segment':28} {'members':>9} {'segql s':>8} {'DF-SQL s':>8} {'DuckDB s':>8} "
          f"{'segql MB':>8} {'DF MB':>6} {'Duck MB':>7} {'/DF':>5} {'/Duck':>6}", flush=True)
    for name in names:
        sql = ROOT / f"bench/sql/{name}.sql"
        r = results[name]
        # The three alternate, so a slower minute of a shared machine falls on all of them.
        a, c, d = [], [], []
        for _ in range(args.repeat):
            a.append(run_single(name))
            c.append(run_measured([args.datafusion_sql, data, sql, "--keys", out / "datafusion"]))
            wall, stdout = run_output([sys.executable, "-c", DUCKDB_CHILD, data, sql,
                                       out / "duckdb" / f"{name}.txt"])
            d.append(json.loads(stdout)["ms"] / 1000)
        d_rss = run_measured([sys.executable, "-c", DUCKDB_CHILD, data, sql, "/dev/null"])[1]
        r.update(segql_s=median(w for w, _ in a), segql_mb=max(m for _, m in a),
                 datafusion_s=median(w for w, _ in c), datafusion_mb=max(m for _, m in c),
                 duckdb_s=median(d), duckdb_mb=d_rss)
        members = {
            "segql": read_keys(out / "segql" / f"{name}.csv", header=True),
            "datafusion": read_keys(out / "datafusion" / f"{name}.txt", header=False),
            "duckdb": read_keys(out / "duckdb" / f"{name}.txt", header=False),
        }
        r["members"] = len(members["segql"])
        r["same"] = all(m == members["segql"] for m in members.values())
        print(f"{name:28} {r['members']:9} {r['segql_s']:8.3f} {r['datafusion_s']:8.3f} {r['duckdb_s']:8.3f} "
              f"{r['segql_mb']:8.0f} {r['datafusion_mb']:6.0f} {r['duckdb_mb']:7.0f} "
              f"{r['segql_s'] / r['datafusion_s']:5.2f} {r['segql_s'] / r['duckdb_s']:6.2f}"
              + ("" if r["same"] else "  MEMBERSHIP DIFFERS: " +
                 ", ".join(f"{k}={len(v)}" for k, v in members.items())), flush=True)

    # (b) all segments together.
    sel = [a for n in names for a in ("--segment", n)] if args.only else []
    # The slowest single segment runs again between the runs of all 50, and the ratio is
    # taken from those runs: both are measured in the same minutes.
    slowest = max(names, key=lambda n: results[n]["segql_s"])
    count_runs, run_runs, slowest_runs = [], [], []
    for _ in range(args.repeat):
        count_runs.append(run_measured(segql + ["count", seg_file, *common, *sel]))
        slowest_runs.append(run_single(slowest))
        run_runs.append(run_measured(segql + ["run", seg_file, *common, *sel,
                                              "--out", out / "all" / "members.csv"]))
    _, counts_text = run_output(segql + ["count", seg_file, *common, *sel])
    counts = {}
    for line in counts_text.splitlines()[1:]:
        parts = line.replace(",", " ").split()
        if len(parts) >= 2 and parts[0] in results:
            counts[parts[0]] = int(parts[-1])
    together = {name: set() for name in names}
    lines = (out / "all" / "members.csv").read_text().splitlines()
    for line in lines[1:]:
        segment, key = line.split(",", 1)
        together[segment].add(key)
    differ = [n for n in names if not results[n]["same"]
              or counts.get(n) != results[n]["members"]
              or together[n] != read_keys(out / "segql" / f"{n}.csv", header=True)]

    summary = {
        "customers": args.customers,
        "segments": len(names),
        "count_all_s": median(w for w, _ in count_runs),
        "count_all_mb": max(m for _, m in count_runs),
        "run_all_s": median(w for w, _ in run_runs),
        "run_all_mb": max(m for _, m in run_runs),
        "slowest_single": slowest,
        "slowest_single_s": results[slowest]["segql_s"],
        "slowest_single_again_s": median(w for w, _ in slowest_runs),
        "sum_single_segql_s": sum(r["segql_s"] for r in results.values()),
        "sum_datafusion_s": sum(r["datafusion_s"] for r in results.values()),
        "sum_duckdb_s": sum(r["duckdb_s"] for r in results.values()),
        "median_ratio_datafusion": median(r["segql_s"] / r["datafusion_s"] for r in results.values()),
        "median_ratio_duckdb": median(r["segql_s"] / r["duckdb_s"] for r in results.values()),
        "within_1_1x_datafusion": sum(r["segql_s"] <= 1.1 * r["datafusion_s"] for r in results.values()),
        "faster_than_duckdb": sum(r["segql_s"] < r["duckdb_s"] for r in results.values()),
    }
    print()
    for key, value in summary.items():
        print(f"{key:28} {value:.3f}" if isinstance(value, float) else f"{key:28} {value}")
    print(f"{'all 50 / slowest single':28} {summary['count_all_s'] / summary['slowest_single_again_s']:.2f} (count), "
          f"{summary['run_all_s'] / summary['slowest_single_again_s']:.2f} (run), "
          "against the slowest single segment's runs between theirs")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "segments": results}, indent=1))
    if differ:
        print(f"MEMBERSHIPS DIFFER for: {', '.join(differ)}")
        sys.exit(1)
    print(f"memberships identical across segql (alone and together), DataFusion SQL and DuckDB "
          f"for all {len(names)} segments")


if __name__ == "__main__":
    main()

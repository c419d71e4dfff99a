#!/usr/bin/python3
"""HTTP requests each adapter spends to push 10,000 SKUs (a benchmark, not
a test: it prints figures and says whether each is within the target).

For every platform with a simulator and a built-in adapter: seed N SKUs,
push a new level for all of them with `adapter-probe set --file`, and count
the requests twice, from the probe's own counter and from the simulator's
log. The minimum the platform allows is ceil(N / max_batch) writes plus
ceil(N / max_page) reads (the probe, like a full push by the worker, reads
every level first to learn item ids), plus reads a platform needs besides
its level pages (EXTRA_READS, printed separately). Target: at most 1.05x
the minimum.

Run:  STOCKSYNC_BUILD_DIR=<build dir> /usr/bin/python3 \
          tests/bench/adapter_requests.py [--skus N] [--by-sku] \
          [--shopify-rate POINTS_PER_S] [PLATFORM...]
--by-sku also runs the push with the read limited to the pushed SKUs
(list_levels with a SKU filter), and prints that as a second row.
Exit 1 when a platform could not push all SKUs or exceeded the target.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "contract"))
import test_contract as tc  # noqa: E402  (simulator and platform table)

TARGET = 1.05

# Reads a platform requires beyond its level pages, with the reason. An
# adapter cannot report tracked/untracked without them, so they count
# toward the minimum; the ratio without them is printed as well.
EXTRA_READS = {
    # inventory/items carries no tracking mode; catalog/products does,
    # at most 250 per page (platforms.md, BigCommerce: read
    # inventory_tracking first).
    "bigcommerce": ("catalog/products pages for inventory_tracking",
                    lambda n: math.ceil(n / 250)),
}


def adapter_limits():
    out = subprocess.run([tc.probe_path(), "platforms"], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    return {d["platform"]: d for d in map(json.loads, out.splitlines())}


def seed(sim, n):
    items = [{"sku": "BENCH-%05d" % i, "qty": i % 50,
              "name": "Bench item %d" % i, "tracked": True}
             for i in range(n)]
    for k in range(0, n, 1000):
        sim.seed(items[k:k + 1000])
    return items


def push(sim, info, items, read_all):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        for it in items:
            f.write("%s=%d\n" % (it["sku"], it["qty"] + 100))
        path = f.name
    argv = [tc.probe_path(), "--platform", info.name, "--url", sim.url,
            "--credentials", "@" + sim.credentials_file(info.credentials),
            "--log-level", "warn"]
    if read_all:
        argv.append("--read-all")
    argv += ["set", "--file", path]
    t0 = time.time()
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    finally:
        os.unlink(path)
    took = time.time() - t0
    lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
    summary = json.loads(lines[-1]) if lines else {"result": "no_output"}
    return p, summary, took


def bench_platform(name, limits, n, by_sku, shopify_rate):
    info = tc.PLATFORM_INFO[name]
    sim = tc.Sim(info)
    sim.start()
    rows = []
    try:
        for read_all in ([True, False] if by_sku else [True]):
            sim.reset()
            if name == "shopify" and shopify_rate:
                # Time only: the adapter paces by the bucket, so the count
                # of requests does not depend on the rate.
                sim._call("POST", "config", {"restore_rate": shopify_rate})
            items = seed(sim, n)
            p, summary, took = push(sim, info, items, read_all)
            log = sim.log()
            state = sim.state()
            wrong = sum(1 for it in items
                        if state.get(it["sku"], {}).get("qty") !=
                        it["qty"] + 100)
            rows.append((read_all, p.returncode, summary, len(log), wrong,
                         took, p.stderr))
    finally:
        sim.stop()

    lim = limits[name]
    min_writes = math.ceil(n / lim["max_batch"])
    min_reads = math.ceil(n / lim["max_page"])
    extra_why, extra_fn = EXTRA_READS.get(name, ("", lambda n: 0))
    extra = extra_fn(n)
    minimum = min_writes + min_reads + extra
    ok = True
    for read_all, rc, summary, logged, wrong, took, stderr in rows:
        http = summary.get("http", {})
        reads = summary.get("read_http", {}).get("requests", 0)
        total = http.get("requests", 0)
        ratio = total / minimum if minimum else float("inf")
        fine = (rc == 0 and summary.get("result") == "ok" and wrong == 0 and
                logged == total and ratio <= TARGET)
        if read_all:
            ok = ok and fine
        print("%-12s %-5s %8d %8d %6d %6d %8d %7.3fx %5.1fs  %s"
              % (name, "all" if read_all else "skus", total, logged, reads,
                 total - reads, minimum, ratio, took,
                 "within" if fine else
                 "OVER/FAILED" if read_all else "over (info only)"))
        print("%-12s       min = %d writes (batch %d) + %d reads (page %d)"
              "%s; retries %d, throttled %d, waited %d ms; result %s, "
              "%d SKUs not at target"
              % ("", min_writes, lim["max_batch"], min_reads,
                 lim["max_page"],
                 " + %d %s (ratio without them %.3fx)"
                 % (extra, extra_why, total / (minimum - extra))
                 if extra else "",
                 http.get("retries", 0),
                 http.get("throttled", 0), http.get("waited_ms", 0),
                 summary.get("result"), wrong))
        if not fine and rc != 0:
            print("             probe: %s" % summary.get("message"))
            for ln in stderr.splitlines()[-5:]:
                print("             | " + ln)
    return ok


def main():
    # Figures appear as each platform finishes, even through a pipe.
    sys.stdout.reconfigure(line_buffering=True)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("platforms", nargs="*", default=list(tc.PLATFORMS))
    ap.add_argument("--skus", type=int, default=10000)
    ap.add_argument("--by-sku", action="store_true")
    ap.add_argument("--shopify-rate", type=float, default=0,
                    help="restore rate (points/s) for the Shopify simulator; "
                    "default: the simulator's own (50, about 13 minutes "
                    "for 10,000 SKUs); Plus stores get 1000")
    args = ap.parse_args()

    limits = adapter_limits()
    print("push of %d SKUs; probe %s" % (args.skus, tc.probe_path()))
    print("%-12s %-5s %8s %8s %6s %6s %8s %8s %6s" %
          ("platform", "read", "requests", "sim_log", "reads", "writes",
           "minimum", "ratio", "time"))
    bad = 0
    for name in args.platforms:
        script = os.path.join(tc.SIM_DIR, name + "_sim.py")
        if not os.path.isfile(script):
            print("%-12s SKIP: no simulator" % name)
            continue
        if name not in limits:
            print("%-12s SKIP: no adapter built into adapter-probe" % name)
            continue
        if not bench_platform(name, limits, args.skus, args.by_sku,
                              args.shopify_rate):
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

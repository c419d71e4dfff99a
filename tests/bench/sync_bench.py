#!/usr/bin/python3
"""Benchmark (not a test): pull and push N SKUs (default 100,000) through
the whole path -- Kafka, stocksync-worker, a store simulator, PostgreSQL --
for Shopify and WooCommerce, and print per run:

  wall time (enqueue to final state), worker CPU seconds, worker peak RSS,
  HTTP requests made, and the minimum the platform's page and batch limits
  allow (pull: ceil(N/page) reads; push: ceil(N/page) reads + ceil(N/batch)
  writes), with the ratio.

Needs a running stack without the app (deploy/stack start --no-app); it
makes its own database content (it recreates the stocksync database) and
runs its own worker. Ends with `stocksync verify`.

  tests/bench/sync_bench.py [--skus N] [--platforms shopify,woocommerce]
"""

import argparse
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import fixtures  # noqa: E402
import harness  # noqa: E402

# page, batch: the platform limits the adapters use (adapters/*.c).
LIMITS = {"shopify": (250, 250), "woocommerce": (100, 100),
          "bigcommerce": (1000, 2000), "magento": (300, 20)}


def proc_cpu_rss(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / tick
    rss = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1]) // 1024
    return cpu, rss


def seed(platform, n):
    c = fixtures.Client(platform, {}, [])
    if platform == "shopify":
        # Shopify's cost throttle would make this a measure of the plan,
        # not of stocksync: a level costs about 4 points to read, so 100k
        # levels need ~400,000 points, 400 s at the Plus plan's documented
        # 1,000 points/s (4,000 s on Standard). The simulator's bucket is
        # opened wide here; the throttle itself is exercised by the
        # contract suite.
        c.sim.request("POST", "/_sim/config",
                      {"bucket": 100000000, "restore_rate": 100000000})
    harness.psql(
        "INSERT INTO inventory_units (client_id, sku, name) SELECT $1, "
        "'B-' || lpad(g::text, 7, '0'), 'Bench item ' || g FROM "
        "generate_series(1, $2::int) g", c.client_id, n)
    harness.psql(
        "INSERT INTO movements (unit_id, location_id, reason_code, "
        "qty_change, request_id) SELECT u.id, $2, 'receiving', 5 + u.id % 7, "
        "'bench-seed' FROM inventory_units u WHERE u.client_id = $1",
        c.client_id, c.pick)
    items = [{"sku": "B-%07d" % g, "qty": 3 + g % 11, "name": "Bench %d" % g}
             for g in range(1, n + 1)]
    for i in range(0, n, 20000):
        c.sim.seed(items[i:i + 20000])
    return c


def run(c, action, flags, worker):
    log0 = len(c.sim.log())
    cpu0, _ = proc_cpu_rss(worker.pids()[0])
    t0 = time.monotonic()
    out = c.run(action, *flags, timeout=3600)
    wall = time.monotonic() - t0
    cpu1, rss = proc_cpu_rss(worker.pids()[0])
    reqs = len(c.sim.log()) - log0
    return out, wall, cpu1 - cpu0, rss, reqs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skus", type=int, default=100000)
    ap.add_argument("--platforms", default="shopify,woocommerce")
    args = ap.parse_args()
    n = args.skus

    harness.fresh_db()
    rows = []
    for platform in args.platforms.split(","):
        page, batch = LIMITS[platform]
        c = seed(platform, n)
        with harness.Worker(1, extra_env={
                "STOCKSYNC_LOG_LEVEL": "warn",
                "STOCKSYNC_STATUS_PROGRESS_EVERY": "10000"}) as w:
            out, wall, cpu, rss, reqs = run(c, "pull", [], w)
            minimum = math.ceil(n / page)
            rows.append((platform, "pull", out, wall, cpu, rss, reqs,
                         minimum))
            # The warehouse's figures differ from what the pull just set
            # for every unit once a movement lands on each.
            harness.psql(
                "INSERT INTO movements (unit_id, location_id, reason_code, "
                "qty_change, request_id) SELECT u.id, $2, 'receiving', 2, "
                "'bench-restock' FROM inventory_units u WHERE "
                "u.client_id = $1", c.client_id, c.pick)
            out, wall, cpu, rss, reqs = run(c, "push",
                                            ["--bypass-guardrail"], w)
            minimum = math.ceil(n / page) + math.ceil(n / batch)
            rows.append((platform, "push", out, wall, cpu, rss, reqs,
                         minimum))

    print("\nstocksync sync benchmark: %d SKUs per run, one worker process "
          "(Shopify simulator unthrottled: see seed())" % n)
    print("%-12s %-5s %-10s %9s %9s %9s %9s %9s %7s" % (
        "platform", "run", "state", "changed", "wall s", "cpu s",
        "rss MiB", "requests", "min", ))
    for platform, action, out, wall, cpu, rss, reqs, minimum in rows:
        print("%-12s %-5s %-10s %9d %9.1f %9.1f %9d %9d %9d  x%.2f" % (
            platform, action, out["state"], out["changed"], wall, cpu, rss,
            reqs, minimum, reqs / minimum))
    rc, text, err = harness.cli("verify")
    print("\nstocksync verify: %s" % ("ok" if rc == 0 else "FAILED"))
    if rc != 0:
        print(text + err)
    return rc


if __name__ == "__main__":
    sys.exit(main())

"""Case C07, the commit watermark: requests at offsets 0, 1 and 2 of one
partition are in flight together; 2 finishes while 1 is still running
(its store answers slowly); then the worker is killed with SIGKILL.

Expected: the committed offset never passes 1 while 1 runs; after a
restart 1 runs again and completes once; 2 is delivered again but changes
nothing (no second movement); 0, finished and committed, is not delivered
again.

The requests go to a one-partition topic of the test's own, in a consumer
group of its own, so the offsets are known. Offsets 1 and 2 belong to
integrations whose keys map to different dispatch threads, so 2 can finish
while 1 runs."""

import os
import re
import subprocess
import time
import unittest
import uuid

import harness
from fixtures import Client, outcome, verify

THREADS = 4


def lane(integration):
    """The dispatch thread of a key: FNV-1a of its bytes, as
    worker/dispatch.c computes it."""
    h = 2166136261
    for b in str(integration).encode():
        h ^= b
        h = (h * 16777619) & 0xFFFFFFFF
    return h % THREADS


class WorkerCase(unittest.TestCase):
    """Workers on a requests topic and in a group of the test's own
    (PARTITIONS partitions); helpers to read what they logged and
    committed."""

    PARTITIONS = 1

    def setUp(self):
        harness.fresh_db()
        tag = uuid.uuid4().hex[:10]
        self.topic = "c07-requests-" + tag
        harness.broker_control("topic %s %d" % (self.topic, self.PARTITIONS))
        harness.wait_for(lambda: harness.kafka_metadata().get(self.topic)
                         == self.PARTITIONS, timeout=20,
                         what="the test topic")
        self.env = {
            "STOCKSYNC_TOPIC_REQUESTS": self.topic,
            "STOCKSYNC_WORKER_GROUP": "c07-" + tag,
            "STOCKSYNC_WORKER_THREADS": str(THREADS),
            "STOCKSYNC_LOG_LEVEL": "debug",
        }
        self.workers = []

    def tearDown(self):
        for w in self.workers:
            w.close()

    @staticmethod
    def log_path(w, i):
        return os.path.join(harness.stack_dir(), "logs", "%s-%d-%d.log"
                            % (w.program, os.getpid(), i))

    def worker(self, wait=True):
        w = harness.Worker(1, extra_env=self.env)
        # Workers of one test process append to the same log files (named
        # by index): keep where this one's lines begin.
        w.log_start = [os.path.getsize(self.log_path(w, i))
                       if os.path.exists(self.log_path(w, i)) else 0
                       for i in range(4)]
        w.start()
        self.workers.append(w)
        if wait:
            harness.wait_for(lambda: "event=partitions_assigned" in
                             self.log(w), timeout=60,
                             what="the partition assignment")
        return w

    @staticmethod
    def log(w, i=0):
        with open(w.logs[i], "rb") as f:
            f.seek(w.log_start[i])
            return f.read().decode("utf-8", "replace")

    def enqueue(self, client):
        rc, out, err = harness.cli("enqueue", "pull", "--integration",
                                   client.integration,
                                   extra_env={"STOCKSYNC_TOPIC_REQUESTS":
                                              self.topic})
        self.assertEqual(rc, 0, out + err)
        return out.strip()

    def committed(self, log):
        """Every offset the worker committed for partition 0, in order."""
        return [int(x) for line in log.splitlines()
                if "event=offsets_committed" in line
                for x in re.findall(r"\[0\]@(\d+)", line)]

    def state(self, rid):
        return harness.psql_value(
            "SELECT state FROM sync_requests WHERE request_id = $1", rid)


class CommitWatermark(WorkerCase):
    def test_commit_never_passes_unfinished_request(self):
        n = 3
        a = Client("shopify", {"A-%d" % i: {"stock": {"PICK": 1}}
                               for i in range(n)}, None)
        b = Client("woocommerce", {"B-%d" % i: {"stock": {"PICK": 1}}
                                   for i in range(n)},
                   [{"sku": "B-%d" % i, "qty": 6, "name": "B"}
                    for i in range(n)])
        c = None
        for _ in range(12):
            c = Client("shopify", {"C-%d" % i: {"stock": {"PICK": 1}}
                                   for i in range(n)}, None)
            if lane(c.integration) != lane(b.integration):
                break
        self.assertNotEqual(lane(c.integration), lane(b.integration))
        # One Shopify store serves A and C (each Client reset it).
        a.sim.reset()
        a.sim.seed([{"sku": "%s-%d" % (p, i), "qty": 4, "name": p}
                    for p in "AC" for i in range(n)])
        # B's store is slow: its pull is still running when C finishes.
        b.sim.fault("slow", count=2, delay_ms=8000, method="GET")

        w = self.worker()
        ra, rb, rc = self.enqueue(a), self.enqueue(b), self.enqueue(c)

        self.assertEqual(outcome(ra, timeout=60)["state"], "succeeded")
        self.assertEqual(outcome(rc, timeout=60)["state"], "succeeded")
        self.assertIn(self.state(rb), ("accepted", "running"))
        time.sleep(1.0)  # several commit rounds (every 200 ms)
        self.assertIn(self.state(rb), ("accepted", "running"),
                      "B must still run when the worker is killed")

        # The watermark reached B (offset 1) and did not pass it, although
        # C (offset 2) is done.
        seen = self.committed(self.log(w))
        self.assertTrue(seen, self.log(w)[-3000:])
        self.assertEqual(max(seen), 1, seen)
        self.assertEqual(seen[-1], 1, seen)

        w.kill()
        self.assertIn(self.state(rb), ("accepted", "running"))
        self.assertEqual(b.movements(), 0, "nothing of B half-applied")
        self.assertEqual(c.movements(), n)
        self.assertEqual(a.movements(), n)

        w2 = self.worker()
        out = outcome(rb, timeout=120)
        self.assertEqual(out["state"], "succeeded", out)
        self.assertGreaterEqual(out["attempts"], 2)
        self.assertEqual(b.movements(), n)

        # C came again and changed nothing; A did not come again.
        harness.wait_for(lambda: re.search(
            r"event=request_duplicate req=%s .*offset=2" % re.escape(rc),
            self.log(w2)), timeout=30, what="C to be delivered again")
        self.assertEqual(c.movements(), n)
        self.assertEqual(a.movements(), n)
        self.assertNotIn(ra, self.log(w2))
        seen2 = self.committed(self.log(w2))
        harness.wait_for(lambda: 3 in self.committed(self.log(w2)), timeout=10,
                         what="the watermark to reach 3")
        self.assertTrue(all(o <= 3 for o in seen2), seen2)

        verify(self)
        codes = w2.stop(60)
        self.assertEqual(codes, [0], self.log(w2)[-2000:])


class FlowControl(WorkerCase):
    """A burst far larger than the dispatch queue: the partition is paused
    while the queue is full and resumed when it drains; every message is
    handled exactly once, in offset order, and the watermark ends past the
    last one."""

    def setUp(self):
        super().setUp()
        self.env["STOCKSYNC_WORKER_THREADS"] = "1"

    def test_burst_pauses_and_loses_nothing(self):
        n = 300
        tag = uuid.uuid4().hex[:12]
        w = self.worker()
        # Not JSON: each is rejected quickly with a DLQ copy of its bytes,
        # which tells which message was handled, and how often.
        lines = "".join("1:bad-%s-%04d\n" % (tag, i) for i in range(n))
        p = subprocess.run(["kcat", "-b", harness.load_env()[
            "STOCKSYNC_BROKERS"], "-P", "-t", self.topic, "-K:", "-q"],
            input=lines.encode(), capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)

        def handled():
            return [r[0] for r in harness.psql(
                "SELECT convert_from(payload, 'UTF8') FROM outbox "
                "WHERE kind = 'dlq' AND convert_from(payload, 'UTF8') "
                "LIKE $1 ORDER BY id", "bad-%s-%%" % tag)]
        harness.wait_for(lambda: len(handled()) >= n, timeout=120,
                         what="every message of the burst")
        self.assertEqual(handled(),
                         ["bad-%s-%04d" % (tag, i) for i in range(n)])
        harness.wait_for(lambda: n in self.committed(self.log(w)),
                         timeout=10, what="the watermark to reach %d" % n)
        log = self.log(w)
        self.assertIn("event=partition_paused", log)
        self.assertIn("event=partition_resumed", log)
        self.assertTrue(all(o <= n for o in self.committed(log)))
        codes = w.stop(60)
        self.assertEqual(codes, [0], self.log(w)[-2000:])


class DatabaseOutage(WorkerCase):
    """While PostgreSQL refuses the worker, a message is retried with a
    growing pause and one warning, its offset is not committed, and a stop
    gives it up cleanly; once the database is back it is handled once."""

    DB = "stocksync_outage_test"

    def setUp(self):
        super().setUp()
        harness.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.DB,
                     database="postgres")
        harness.psql("CREATE DATABASE %s" % self.DB, database="postgres")
        url = harness.env()["STOCKSYNC_DATABASE_URL"].rsplit("/", 1)[0] \
            + "/" + self.DB
        rc, out, err = harness.cli("migrate", extra_env={
            "STOCKSYNC_DATABASE_URL": url})
        self.assertEqual(rc, 0, out + err)
        self.env["STOCKSYNC_DATABASE_URL"] = url
        self.addCleanup(harness.psql, "DROP DATABASE IF EXISTS %s WITH "
                        "(FORCE)" % self.DB, database="postgres")

    def database(self, up):
        harness.psql("ALTER DATABASE %s ALLOW_CONNECTIONS %s"
                     % (self.DB, "true" if up else "false"),
                     database="postgres")
        if not up:
            harness.psql("SELECT pg_terminate_backend(pid) FROM "
                         "pg_stat_activity WHERE datname = $1", self.DB,
                         database="postgres")

    def dlq_rows(self, marker):
        return int(harness.psql_value(
            "SELECT count(*) FROM outbox WHERE kind = 'dlq' AND "
            "convert_from(payload, 'UTF8') = $1", marker,
            database=self.DB))

    def test_retried_not_committed_then_handled_once(self):
        marker = "outage-" + uuid.uuid4().hex
        w = self.worker()
        self.addCleanup(self.database, True)
        self.database(False)
        harness.kafka_produce(self.topic, "1", marker)

        harness.wait_for(lambda: "event=request_retry " in self.log(w),
                         timeout=20, what="a retry warning")
        time.sleep(3.0)  # several attempts (250, 500, 1000 ms ...)
        log = self.log(w)
        self.assertEqual(log.count("event=request_retry "), 1,
                         "one warning per 30 s, not one per attempt")
        self.assertTrue(all(o == 0 for o in self.committed(log)),
                        self.committed(log))

        # A stop while it waits to retry gives it up, uncommitted.
        t0 = time.monotonic()
        self.assertEqual(w.stop(30), [0], self.log(w)[-2000:])
        self.assertLess(time.monotonic() - t0, 15)
        log = self.log(w)
        self.assertIn("event=request_abandoned", log)
        self.assertTrue(all(o == 0 for o in self.committed(log)))

        # The next worker gets it again and handles it once the database
        # is back.
        w2 = self.worker()
        harness.wait_for(lambda: "event=request_retry " in self.log(w2),
                         timeout=30, what="the message to come again")
        self.database(True)
        harness.wait_for(lambda: self.dlq_rows(marker) == 1, timeout=30,
                         what="the rejection to be recorded")
        harness.wait_for(lambda: 1 in self.committed(self.log(w2)),
                         timeout=15, what="the watermark to pass it")
        self.assertIn("event=request_retry_succeeded", self.log(w2))
        self.assertEqual(w2.stop(30), [0], self.log(w2)[-2000:])
        self.assertEqual(self.dlq_rows(marker), 1)


class Rebalance(WorkerCase):
    """A second worker joins while the first is busy, then the first
    stops: partitions move with their watermarks; nothing is lost, and
    both exit cleanly. (A redelivery around a rebalance is allowed: the
    mock refuses commits while the group rebalances, infra.md gotcha 2.)"""

    PARTITIONS = 6

    def produce(self, markers):
        lines = "".join("%d:%s\n" % (i % 17 + 1, m)
                        for i, m in enumerate(markers))
        p = subprocess.run(["kcat", "-b", harness.load_env()[
            "STOCKSYNC_BROKERS"], "-P", "-t", self.topic, "-K:", "-q"],
            input=lines.encode(), capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)

    def handled(self, tag):
        return [r[0] for r in harness.psql(
            "SELECT convert_from(payload, 'UTF8') FROM outbox "
            "WHERE kind = 'dlq' AND convert_from(payload, 'UTF8') "
            "LIKE $1", "rb-%s-%%" % tag)]

    def test_partitions_move_nothing_lost(self):
        tag = uuid.uuid4().hex[:12]
        markers = ["rb-%s-%04d" % (tag, i) for i in range(900)]
        w = self.worker()
        self.produce(markers[:300])
        w.start(1)  # a second process joins the group
        self.produce(markers[300:600])
        harness.wait_for(lambda: "event=partitions_assigned" in
                         self.log(w, 1), timeout=60,
                         what="the second worker's assignment")
        self.assertIn("event=partitions_revoked", self.log(w, 0))

        # The first stops; the second takes every partition.
        self.assertEqual(w.stop(60, index=0), [0], self.log(w, 0)[-2000:])
        self.produce(markers[600:])
        harness.wait_for(lambda: set(self.handled(tag)) == set(markers),
                         timeout=120, what="every message handled")
        harness.wait_for(lambda: self.log(w, 1).count(
            "event=partitions_assigned") >= 2, timeout=30,
            what="the second worker to own every partition")
        self.assertEqual(w.stop(60, index=1), [0], self.log(w, 1)[-2000:])

        got = self.handled(tag)
        dups = len(got) - len(set(got))
        self.assertEqual(set(got), set(markers))
        self.assertLess(dups, len(markers) // 3, "redelivered: %d" % dups)
        for i in range(2):
            self.assertNotIn("event=assign_failed", self.log(w, i))
            self.assertNotIn("level=error", self.log(w, i))


if __name__ == "__main__":
    unittest.main()

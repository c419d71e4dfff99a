"""The outbox publisher of stocksync-worker against the stack: rows reach
their topic with key, headers and payload as stored, exactly once; a NOTIFY
from the outbox trigger wakes the publisher; two workers share the outbox
without publishing a row twice; and case C08: while every broker is down
for longer than the producer's message timeout, movement events stay
pending and are counted as failed, then go out once each, with the same
movement ids, when the brokers are back.

Runs on a database of its own and on topics of its own, so it neither sees
nor disturbs what other tests publish."""

import os
import re
import time
import unittest
import uuid

import harness

DB = "stocksync_outbox_test"


def sql(query, *params):
    return harness.psql(query, *params, database=DB)


def sql_value(query, *params):
    return harness.psql_value(query, *params, database=DB)


class OutboxTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB,
                     database="postgres")
        harness.psql("CREATE DATABASE %s" % DB, database="postgres")
        cls.url = harness.env()["STOCKSYNC_DATABASE_URL"].rsplit("/", 1)[0] \
            + "/" + DB
        rc, out, err = harness.cli("migrate", extra_env={
            "STOCKSYNC_DATABASE_URL": cls.url})
        if rc != 0:
            raise AssertionError("migrate failed: %s%s" % (out, err))

        tag = uuid.uuid4().hex[:10]
        cls.topics = {k: "outbox-test-%s.%s" % (k, tag)
                      for k in ("requests", "status", "movements", "dlq")}
        for name in cls.topics.values():
            harness.broker_control("topic %s 3" % name)
        harness.wait_for(lambda: all(harness.kafka_metadata().get(t) == 3
                                     for t in cls.topics.values()),
                         timeout=20, what="the test topics")
        cls.env = {
            "STOCKSYNC_DATABASE_URL": cls.url,
            "STOCKSYNC_TOPIC_REQUESTS": cls.topics["requests"],
            "STOCKSYNC_TOPIC_STATUS": cls.topics["status"],
            "STOCKSYNC_TOPIC_MOVEMENTS": cls.topics["movements"],
            "STOCKSYNC_TOPIC_DLQ": cls.topics["dlq"],
            "STOCKSYNC_WORKER_GROUP": "outbox-test-" + tag,
            "STOCKSYNC_LOG_LEVEL": "debug",
        }

        # A unit and a location for movements (the ledger trigger writes
        # one outbox row per movement).
        cls.client = int(sql_value(
            "INSERT INTO clients (name) VALUES ('outbox test') "
            "RETURNING id"))
        cls.location = int(sql_value(
            "INSERT INTO locations (code) VALUES ('OUTBOX-PICK') "
            "RETURNING id"))
        cls.units = [int(sql_value(
            "INSERT INTO inventory_units (client_id, sku, name) "
            "VALUES ($1, $2, $3) RETURNING id", cls.client,
            "OB-%d" % i, "Outbox, unit %d" % i)) for i in range(3)]

    @classmethod
    def tearDownClass(cls):
        harness.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB,
                     database="postgres")

    # ------------------------------------------------------------ helpers

    def worker(self, n=1, **extra):
        env = dict(self.env)
        env.update({k: str(v) for k, v in extra.items()})
        w = harness.Worker(n, extra_env=env)
        # Log files are named by test process and index, so several
        # workers of this module append to the same files: remember where
        # this one's lines begin.
        self.log_from = [len(self.read_log(w, i, 0)) for i in range(n)]
        w.start()
        self.addCleanup(w.close)
        for i in range(n):
            harness.wait_for(lambda i=i: "event=outbox_connected" in
                             self.log(w, i), timeout=20,
                             what="the outbox publisher to connect")
        return w

    @staticmethod
    def read_log(w, i, start):
        try:
            with open(os.path.join(harness.stack_dir(), "logs",
                                   "%s-%d-%d.log" % (w.program, os.getpid(),
                                                     i)),
                      encoding="utf-8", errors="replace") as f:
                return f.read()[start:]
        except FileNotFoundError:
            return ""

    def log(self, w, i=0):
        """What worker process i of w logged."""
        return self.read_log(w, i, self.log_from[i])

    def stop(self, w):
        codes = w.stop(60)
        self.assertEqual(codes, [0] * len(codes),
                         "\n".join(self.log(w, i)[-2000:]
                                   for i in range(len(codes))))

    def pending(self, ids):
        return int(sql_value(
            "SELECT count(*) FROM outbox WHERE id = ANY($1::bigint[]) "
            "AND sent_at IS NULL", "{%s}" % ",".join(map(str, ids))))

    def wait_sent(self, ids, timeout=30):
        harness.wait_for(lambda: self.pending(ids) == 0, timeout=timeout,
                         interval=0.2, what="outbox rows to be sent")

    def add_movements(self, request_id):
        """Three movements in one transaction, as a pull commits them.
        Returns {movement_id: outbox_id}."""
        rows = sql(
            "INSERT INTO movements (unit_id, location_id, reason_code, "
            "qty_before, qty_after, qty_change, request_id) "
            "SELECT u, $1::bigint, 'ecommerce_pull', 0, 0, 4, $2 "
            "FROM unnest($3::bigint[]) u RETURNING id",
            self.location, request_id,
            "{%s}" % ",".join(map(str, self.units)))
        ids = [int(r[0]) for r in rows]
        self.assertEqual(len(ids), 3)
        out = sql("SELECT movement_id, id FROM outbox "
                  "WHERE movement_id = ANY($1::bigint[])",
                  "{%s}" % ",".join(map(str, ids)))
        return {int(m): int(o) for m, o in out}

    def movement_events(self, request_id):
        return [m for m in harness.kafka_consume(self.topics["movements"])
                if m.json().get("request_id") == request_id]

    # -------------------------------------------------------------- tests

    def test_rows_keep_key_headers_and_payload(self):
        w = self.worker()
        tag = uuid.uuid4().hex
        status_id = int(sql_value(
            "INSERT INTO outbox (kind, msg_key, payload, headers, request_id)"
            " VALUES ('status', $1, convert_to($2, 'UTF8'), $3::jsonb, $1)"
            " RETURNING id", "req-" + tag,
            '{"state":"accepted","tag":"%s"}' % tag,
            {"content-type": "application/json", "attempt": 2}))
        # A DLQ copy keeps the original bytes, which need not be UTF-8.
        dlq_id = int(sql_value(
            "INSERT INTO outbox (kind, msg_key, payload, headers) VALUES "
            "('dlq', NULL, decode($1, 'hex'), $2::jsonb) RETURNING id",
            "ff00fe" + tag.encode().hex(), {"error_code": "not_json"}))
        moves = self.add_movements("hdr-" + tag)
        self.wait_sent([status_id, dlq_id] + list(moves.values()))

        status = [m for m in harness.kafka_consume(self.topics["status"])
                  if m.key == "req-" + tag]
        self.assertEqual(len(status), 1, status)
        self.assertEqual(status[0].json(), {"state": "accepted", "tag": tag})
        self.assertEqual(status[0].header("content-type"),
                         "application/json")
        self.assertEqual(status[0].header("attempt"), "2")

        dlq = [m for m in harness.kafka_consume(self.topics["dlq"])
               if m.payload and m.payload.endswith(tag.encode())]
        self.assertEqual(len(dlq), 1, dlq)
        self.assertEqual(dlq[0].payload, b"\xff\x00\xfe" + tag.encode())
        self.assertIsNone(dlq[0].key)
        self.assertEqual(dlq[0].header("error_code"), "not_json")

        events = self.movement_events("hdr-" + tag)
        self.assertEqual(sorted(m.json()["movement_id"] for m in events),
                         sorted(moves))
        units = {str(u) for u in self.units}
        self.assertEqual({m.key for m in events}, units)
        self.stop(w)

    def test_notify_wakes_publisher(self):
        # With a 60 s poll interval only the trigger's NOTIFY can make the
        # row go out within seconds.
        w = self.worker(STOCKSYNC_OUTBOX_INTERVAL_MS=60000)
        time.sleep(1.0)  # past the first round, into the long wait
        tag = uuid.uuid4().hex
        t0 = time.monotonic()
        row = int(sql_value(
            "INSERT INTO outbox (kind, msg_key, payload) VALUES "
            "('status', $1, convert_to('{}', 'UTF8')) RETURNING id", tag))
        self.wait_sent([row], timeout=15)
        self.assertLess(time.monotonic() - t0, 10.0)
        self.stop(w)

    def test_two_workers_publish_each_row_once(self):
        w = self.worker(2, STOCKSYNC_OUTBOX_BATCH=25)
        tag = uuid.uuid4().hex
        n = 400
        ids = [int(r[0]) for r in sql(
            "INSERT INTO outbox (kind, msg_key, payload) "
            "SELECT 'status', $1, convert_to($1 || ':' || g, 'UTF8') "
            "FROM generate_series(1, $2::int) g RETURNING id", tag, n)]
        self.wait_sent(ids, timeout=60)
        self.stop(w)

        got = [m.payload.decode() for m in
               harness.kafka_consume(self.topics["status"]) if m.key == tag]
        self.assertEqual(sorted(got),
                         sorted("%s:%d" % (tag, i) for i in range(1, n + 1)))
        # Each row was marked sent by exactly one of them.
        published = sum(int(x) for i in range(2) for x in re.findall(
            r"event=outbox_stopped .*published=(\d+)", self.log(w, i)))
        self.assertEqual(published, n)

    def test_c08_brokers_down_longer_than_message_timeout(self):
        kafka = harness.load_env().get("STOCKSYNC_KAFKA", "")
        w = self.worker(STOCKSYNC_KAFKA=(kafka + "," if kafka else "")
                        + "message.timeout.ms=3000")
        rid = "c08-" + uuid.uuid4().hex
        try:
            for b in (1, 2, 3):
                harness.broker_control("down %d" % b)
            time.sleep(0.5)
            moves = self.add_movements(rid)
            rows = list(moves.values())
            before = {int(m): bytes.fromhex(p[2:]) for m, p in sql(
                "SELECT movement_id, payload FROM outbox "
                "WHERE id = ANY($1::bigint[])",
                "{%s}" % ",".join(map(str, rows)))}

            # Delivery fails after message.timeout.ms: every row is still
            # pending, with its failure counted and recorded.
            harness.wait_for(lambda: int(sql_value(
                "SELECT count(*) FROM outbox WHERE id = ANY($1::bigint[]) "
                "AND sent_at IS NULL AND attempts >= 1 "
                "AND last_error IS NOT NULL",
                "{%s}" % ",".join(map(str, rows)))) == 3,
                timeout=30, what="failed attempts on the outbox rows")
            time.sleep(4.0)
            self.assertEqual(self.pending(rows), 3)
            log = self.log(w)
            for m in moves:
                self.assertRegex(log, r"event=outbox_delivery_failed .*"
                                 r"movement_id=%d " % m)
        finally:
            for b in (1, 2, 3):
                harness.broker_control("up %d" % b)

        # Back up: each goes out (the client reconnects within ~10 s).
        self.wait_sent(rows, timeout=90)
        self.stop(w)
        events = harness.wait_for(
            lambda: (lambda e: e if len(e) >= 3 else None)(
                self.movement_events(rid)),
            timeout=30, what="the three movement events")
        ids = sorted(m.json()["movement_id"] for m in events)
        self.assertEqual(ids, sorted(moves), "each movement exactly once")
        for m in events:
            self.assertEqual(m.payload, before[m.json()["movement_id"]],
                             "the re-send carries the stored payload")
        failed = [int(x) for x in re.findall(
            r"event=outbox_stopped .*failed=(\d+)", self.log(w))]
        self.assertEqual(len(failed), 1, self.log(w)[-2000:])
        self.assertGreaterEqual(failed[0], 3)
        self.assertGreaterEqual(int(sql_value(
            "SELECT min(attempts) FROM outbox WHERE id = ANY($1::bigint[])",
            "{%s}" % ",".join(map(str, rows)))), 1)

    def test_stop_while_brokers_down_keeps_rows_pending(self):
        # The default message timeout (300 s) would outlast any stop: the
        # final drain gives up after its limit and the rows stay pending.
        w = self.worker()
        rid = "c08-stop-" + uuid.uuid4().hex
        try:
            for b in (1, 2, 3):
                harness.broker_control("down %d" % b)
            time.sleep(0.5)
            rows = list(self.add_movements(rid).values())
            time.sleep(1.0)  # the publisher has them in flight
            t0 = time.monotonic()
            self.stop(w)
            self.assertLess(time.monotonic() - t0, 30)
            self.assertEqual(self.pending(rows), 3)
            self.assertRegex(self.log(w), r"event=outbox_stopped .*"
                             r"published=0 failed=[1-9]")
        finally:
            for b in (1, 2, 3):
                harness.broker_control("up %d" % b)

        w = self.worker()
        self.wait_sent(rows, timeout=90)
        self.stop(w)
        events = harness.wait_for(
            lambda: (lambda e: e if len(e) >= 3 else None)(
                self.movement_events(rid)),
            timeout=30, what="the three movement events")
        self.assertEqual(len(events), 3, events)


if __name__ == "__main__":
    unittest.main()

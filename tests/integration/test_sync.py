"""The main job end to end (issue 2): requests on Kafka, stocksync-worker,
the store simulators, PostgreSQL and the events on the status, movements
and dead-letter topics. Each test ends with `stocksync verify`."""

import json
import signal
import time
import unittest

import fixtures
import harness
from fixtures import Client, listed, outcome, verify

PLATFORMS = ("shopify", "woocommerce")


def catalog():
    units = {
        "TEE-S": {"stock": {"PICK": 5}},
        "TEE-M": {"stock": {"PICK": 8}},
        "MUG": {"stock": {"PICK": 3}},
        "CAP": {"stock": {"PICK": 4}, "status": "discontinued"},
        "WH-ONLY": {"stock": {"PICK": 1}},
    }
    store = [
        {"sku": "TEE-S", "qty": 5, "name": "Tee S"},
        {"sku": "TEE-M", "qty": 6, "name": "Tee M"},
        {"sku": "MUG", "qty": 10, "name": "Mug, blue"},
        {"sku": "CAP", "qty": 9, "name": "Cap"},
        {"sku": "STORE-ONLY", "qty": 2, "name": "Sticker"},
    ]
    return units, store


class SyncTest(unittest.TestCase):
    worker = None

    @classmethod
    def setUpClass(cls):
        harness.fresh_db()
        cls.worker = harness.Worker(1).start()

    @classmethod
    def tearDownClass(cls):
        codes = cls.worker.stop(30)
        if any(c != 0 for c in codes):
            raise AssertionError("worker exited with %s:\n%s"
                                 % (codes, cls.worker.log()[-3000:]))

    def tearDown(self):
        verify(self)


class PullPush(SyncTest):
    def check_pull_whole(self, platform):
        units, store = catalog()
        c = Client(platform, units, store)
        out = c.run("pull")
        self.assertEqual(out["state"], "succeeded", out)
        # TEE-M 8 -> 6 and MUG 3 -> 10 changed; TEE-S equal; CAP is
        # discontinued and left alone.
        self.assertEqual(out["changed"], 2, out)
        self.assertEqual(out["unchanged"], 1, out)
        self.assertEqual(c.stock("TEE-M"), 6)
        self.assertEqual(c.stock("MUG"), 10)
        self.assertEqual(c.stock("CAP"), 4)
        self.assertEqual(c.movements("TEE-S"), 0)
        self.assertEqual(c.movements("TEE-M"), 1)
        self.assertIn("STORE-ONLY", listed(out, "unmatched_store"))
        self.assertIn("WH-ONLY", listed(out, "unmatched_warehouse"))
        self.assertIn("CAP", listed(out, "skipped"))
        # One movement event per movement, with the export's fields. The
        # topic outlives test databases, so match on the request id too.
        mids = {int(r[0]) for r in harness.psql(
            "SELECT id FROM movements WHERE integration_id = $1",
            c.integration)}

        def mine(ms):
            return [m for m in ms
                    if m.json().get("request_id") == out["request_id"]]
        events = harness.kafka_wait(
            harness.topic("movements"),
            lambda ms: mine(ms) if len(mine(ms)) >= 2 else None,
            timeout=30, what="movement events")
        self.assertEqual({m.json()["movement_id"] for m in events}, mids)
        ev = events[0].json()
        for key in ("movement_id", "occurred_at", "reason_code", "note",
                    "qty_before", "qty_after", "qty_change", "sku",
                    "item_name", "location_code", "serial", "batch", "lot",
                    "order_ref", "client_id", "unit_id", "integration_id",
                    "request_id"):
            self.assertIn(key, ev)
        self.assertEqual(ev["reason_code"], "ecommerce_pull")
        self.assertEqual(ev["request_id"], out["request_id"])
        self.assertEqual(events[0].key, str(ev["unit_id"]))
        # Pulling again changes nothing.
        again = c.run("pull")
        self.assertEqual(again["changed"], 0, again)
        self.assertEqual(c.movements(), 2)
        return c

    def test_pull_whole_shopify(self):
        self.check_pull_whole("shopify")

    def test_pull_whole_woocommerce(self):
        self.check_pull_whole("woocommerce")

    def test_pull_one_unit(self):
        for platform in PLATFORMS:
            units, store = catalog()
            c = Client(platform, units, store)
            out = c.run("pull", unit="MUG")
            self.assertEqual(out["state"], "succeeded", out)
            self.assertEqual(out["changed"], 1, out)
            self.assertEqual(c.stock("MUG"), 10)
            self.assertEqual(c.stock("TEE-M"), 8)  # not part of it

    def check_push(self, platform):
        units, store = catalog()
        c = Client(platform, units, store)
        # Dry run: the plan, nothing written.
        dry = c.run("push", "--dry-run")
        self.assertEqual(dry["state"], "succeeded", dry)
        self.assertEqual(sorted(listed(dry, "planned")), ["MUG", "TEE-M"])
        self.assertEqual(c.store_levels()["MUG"], 10)
        # Changed only: TEE-M 6 -> 8, MUG 10 -> 3.
        out = c.run("push")
        self.assertEqual(out["state"], "succeeded", out)
        self.assertEqual(out["changed"], 2, out)
        lv = c.store_levels()
        self.assertEqual((lv["TEE-M"], lv["MUG"], lv["TEE-S"], lv["CAP"]),
                         (8, 3, 5, 9))
        # All: every unit written, even unchanged ones.
        before = len(c.sim.log())
        allp = c.run("push", "--all")
        self.assertEqual(allp["state"], "succeeded", allp)
        self.assertEqual(allp["changed"], 3, allp)
        self.assertGreater(len(c.sim.log()), before)
        # Sync off: skipped with its reason, unless forced.
        harness.psql("UPDATE integrations SET stock_sync_enabled = false "
                     "WHERE id = $1", c.integration)
        c.sim.set("TEE-S", 1)
        off = c.run("push")
        self.assertEqual((off["state"], off["code"]),
                         ("skipped", "stock_sync_disabled"))
        self.assertEqual(c.store_levels()["TEE-S"], 1)
        forced = c.run("push", "--force")
        self.assertEqual(forced["state"], "succeeded", forced)
        self.assertEqual(c.store_levels()["TEE-S"], 5)
        # Store is the stock master: skipped unless forced.
        harness.psql("UPDATE integrations SET stock_sync_enabled = true, "
                     "stock_master = 'ecommerce' WHERE id = $1",
                     c.integration)
        master = c.run("push")
        self.assertEqual((master["state"], master["code"]),
                         ("skipped", "store_is_stock_master"))

    def test_push_shopify(self):
        self.check_push("shopify")

    def test_push_woocommerce(self):
        self.check_push("woocommerce")

    def test_status_events(self):
        units, store = catalog()
        c = Client("shopify", units, store)
        rid = c.enqueue("pull")
        out = outcome(rid)
        evs = fixtures.status_events(rid)
        states = [e["state"] for e in evs]
        self.assertEqual(states[0], "accepted")
        self.assertEqual(states[-1], out["state"])
        self.assertTrue(evs[-1]["final"])
        self.assertEqual(set(evs[-1]["counts"]),
                         {"seen", "changed", "unchanged", "skipped",
                          "failed"})
        # The CLI prints the same outcome.
        rc, text, err = harness.cli("status", rid, "--timeout", "5")
        self.assertEqual(rc, 0, text + err)
        self.assertIn("succeeded", text)


class Refusals(SyncTest):
    def refused(self, rid, code):
        out = outcome(rid)
        self.assertEqual((out["state"], out["code"]), ("rejected", code),
                         out)
        self.assertTrue(out["message"])
        return out

    def test_refusals(self):
        units, store = catalog()
        c = Client("shopify", units, store)
        other = Client("woocommerce", {"OTHER": {"stock": {"PICK": 1}}}, [])
        rc, rid, err = harness.cli("enqueue", "pull", "--integration",
                                   "999999")
        self.refused(rid.strip(), "unknown_integration")
        self.refused(c.enqueue("pull", unit=other.units["OTHER"]),
                     "unit_not_of_client")
        self.refused(c.enqueue("push", unit=987654), "unknown_unit")
        harness.psql("UPDATE integrations SET active = false WHERE id = $1",
                     c.integration)
        self.refused(c.enqueue("pull"), "integration_inactive")
        self.refused(c.enqueue("push", "--force"), "integration_inactive")
        harness.psql("UPDATE integrations SET active = true, platform = "
                     "'etsy' WHERE id = $1", c.integration)
        self.refused(c.enqueue("pull"), "unsupported_platform")
        self.assertEqual(c.movements(), 0)

    def test_store_auth_failure(self):
        units, store = catalog()
        c = Client("woocommerce", units, store)
        c.sim.fault("auth", count=5)
        out = c.run("pull")
        self.assertEqual((out["state"], out["code"]),
                     ("failed", "store_auth_failed"), out)
        # Auth errors are never retried.
        self.assertEqual(len([e for e in c.sim.log()
                              if e.get("fault") == "auth"]), 1)


class Idempotency(SyncTest):
    def test_same_request_twice(self):
        units, store = catalog()
        c = Client("shopify", units, store)
        msg = json.dumps({
            "request_id": "dup-%d" % time.time_ns(), "action": "pull",
            "integration_id": c.integration, "requested_by": "test",
            "requested_at": "2026-12-04T10:00:00Z"})
        rid = json.loads(msg)["request_id"]
        harness.kafka_produce(harness.topic("requests"),
                              str(c.integration), msg)
        first = outcome(rid)
        self.assertEqual(first["changed"], 2)
        moved = c.movements()
        # The store changes meanwhile: a second application would show.
        c.sim.set("TEE-S", 50)
        harness.kafka_produce(harness.topic("requests"),
                              str(c.integration), msg)
        # A later request on the same key proves the duplicate was read.
        marker = c.enqueue("pull", "--dry-run")
        outcome(marker)
        self.assertEqual(c.movements(), moved)
        self.assertEqual(c.stock("TEE-S"), 5)
        self.assertEqual(outcome(rid)["attempts"], 1)


    def test_id_reused_for_another_request(self):
        """An id already used with another body is refused as
        duplicate_request; the first request keeps its record."""
        units, store = catalog()
        c = Client("shopify", units, store)
        rid = "reuse-%d" % time.time_ns()
        first = outcome(c.enqueue("pull", request_id=rid))
        self.assertEqual(first["state"], "succeeded")
        c.enqueue("push", "--force", request_id=rid)

        def refused():
            return [m for m in harness.kafka_consume(harness.topic("dlq"),
                                                     timeout=15)
                    if m.header("error_code") == "duplicate_request"
                    and rid.encode() in (m.payload or b"")]
        harness.wait_for(refused, timeout=30, interval=0.5,
                         what="the reused id on the DLQ")
        again = outcome(rid)
        self.assertEqual((again["state"], again["changed"]),
                         ("succeeded", first["changed"]))
        self.assertEqual(c.store_levels()["MUG"], 10)  # no push ran


class BadInput(SyncTest):
    CASES = [
        (b"not json at all", "not_json"),
        (b'{"request_id":"bad-utf8","action":"pull","integration_id":1,'
         b'"requested_by":"\xc3\x28","requested_at":"2026-12-04T10:00:00Z"}',
         "invalid_utf8"),
        (b'{"request_id":"bad-missing","integration_id":1,'
         b'"requested_by":"t","requested_at":"2026-12-04T10:00:00Z"}',
         "missing_field"),
        (b'{"request_id":"bad-type","action":"pull","integration_id":"1",'
         b'"requested_by":"t","requested_at":"2026-12-04T10:00:00Z"}',
         "bad_field"),
        (b'{"request_id":"bad-action","action":"sync","integration_id":1,'
         b'"requested_by":"t","requested_at":"2026-12-04T10:00:00Z"}',
         "unknown_action"),
        (b'{"request_id":"bad-field","action":"push","integration_id":1,'
         b'"options":{"forse":true},"requested_by":"t",'
         b'"requested_at":"2026-12-04T10:00:00Z"}', "unknown_field"),
        (b'{"request_id":"bad-range","action":"pull",'
         b'"integration_id":99999999999999999999,"requested_by":"t",'
         b'"requested_at":"2026-12-04T10:00:00Z"}', "id_out_of_range"),
        (b'{"request_id":"bad-time","action":"pull","integration_id":1,'
         b'"requested_by":"t","requested_at":"yesterday"}', "bad_field"),
        (b"", "not_json"),
        (b"[]", "bad_field"),
    ]

    def test_each_bad_message(self):
        units, store = catalog()
        c = Client("shopify", units, store)
        tag = str(time.time_ns())
        for payload, code in self.CASES:
            payload = payload.replace(b'"bad-', b'"bad-' + tag.encode()
                                      + b'-')
            harness.kafka_produce(harness.topic("requests"), "1", payload)
        # Key that is not the integration id.
        kid = "bad-%s-key" % tag
        harness.kafka_produce(harness.topic("requests"), "2", json.dumps({
            "request_id": kid, "action": "pull", "integration_id": 1,
            "requested_by": "t", "requested_at": "2026-12-04T10:00:00Z"}))
        # The worker keeps running: a good request after them works.
        good = c.run("pull")
        self.assertEqual(good["state"], "succeeded", good)
        self.assertEqual(self.worker.alive(), self.worker.procs)

        # Every one is refused with its code, and copied to the DLQ.
        def dlq_codes():
            msgs = harness.kafka_consume(harness.topic("dlq"), timeout=15)
            return [m.header("error_code") for m in msgs]
        want = [code for _, code in self.CASES] + ["key_mismatch"]

        def all_there():
            got = dlq_codes()
            return all(got.count(c) >= want.count(c) for c in set(want))
        harness.wait_for(all_there, timeout=30, interval=0.5,
                         what="a DLQ copy of every bad message")
        for rid, code in [("bad-%s-missing" % tag, "missing_field"),
                          ("bad-%s-action" % tag, "unknown_action"),
                          (kid, "key_mismatch")]:
            out = outcome(rid)
            self.assertEqual((out["state"], out["code"]), ("rejected", code))
        # The rejected status event names where the message was read.
        evs = fixtures.status_events("bad-%s-action" % tag)
        self.assertEqual(evs[-1]["state"], "rejected")
        self.assertEqual(evs[-1]["source"]["topic"],
                         harness.topic("requests"))
        # An oversized message is refused too, never dropped silently.
        big = json.dumps({"request_id": "bad-%s-big" % tag, "action": "pull",
                          "integration_id": c.integration,
                          "requested_by": "x" * 100000,
                          "requested_at": "2026-12-04T10:00:00Z"})
        harness.kafka_produce(harness.topic("requests"),
                              str(c.integration), big)
        marker = c.run("pull", "--dry-run")
        self.assertEqual(marker["state"], "succeeded")
        self.assertGreaterEqual(dlq_codes().count("message_too_large"), 1)


class Crash(SyncTest):
    def test_sigkill_mid_request(self):
        """The worker is killed while a pull of many SKUs runs (the store
        answers slowly); after a restart the request completes exactly
        once and the ledger and the audit topic agree."""
        n = 300
        units = {"K-%03d" % i: {"stock": {"PICK": 1}} for i in range(n)}
        store = [{"sku": "K-%03d" % i, "qty": 2 + i % 5, "name": "K"}
                 for i in range(n)]
        c = Client("woocommerce", units, store, page_size=20)
        c.sim.fault("slow", count=20, delay_ms=400, method="GET")
        rid = c.enqueue("pull")
        harness.wait_for(lambda: harness.psql_value(
            "SELECT 1 FROM sync_requests WHERE request_id = $1", rid),
            timeout=60, what="the request to start")
        time.sleep(1.0)
        self.worker.kill()
        self.assertIsNone(harness.psql_value(
            "SELECT 1 FROM sync_requests WHERE request_id = $1 AND state "
            "NOT IN ('accepted', 'running')", rid))
        self.assertEqual(c.movements(), 0)  # nothing half-applied
        type(self).worker = harness.Worker(1).start()
        out = outcome(rid, timeout=120)
        self.assertEqual(out["state"], "succeeded", out)
        self.assertGreaterEqual(out["attempts"], 2)
        self.assertEqual(c.movements(), n)
        # Ledger and audit topic agree: every movement id is on the topic.
        ids = {int(r[0]) for r in harness.psql(
            "SELECT id FROM movements WHERE request_id = $1", rid)}

        def on_topic():
            seen = {m.json().get("movement_id") for m in
                    harness.kafka_consume(harness.topic("movements"),
                                          timeout=20)
                    if m.json().get("request_id") == rid}
            return seen == ids
        harness.wait_for(on_topic, timeout=60, interval=1,
                         what="every movement on the audit topic")

    def test_sigterm_finishes_current(self):
        units = {"T-%03d" % i: {"stock": {"PICK": 1}} for i in range(60)}
        store = [{"sku": "T-%03d" % i, "qty": 3, "name": "T"}
                 for i in range(60)]
        c = Client("woocommerce", units, store, page_size=10)
        c.sim.fault("slow", count=6, delay_ms=300, method="GET")
        rid = c.enqueue("pull")
        harness.wait_for(lambda: harness.psql_value(
            "SELECT 1 FROM sync_requests WHERE request_id = $1", rid),
            timeout=60, what="the request to start")
        codes = self.worker.stop(60)
        self.assertEqual(codes, [0], self.worker.log()[-2000:])
        out = outcome(rid, timeout=5)
        self.assertEqual(out["state"], "succeeded", out)
        self.assertEqual(c.movements(), 60)
        type(self).worker = harness.Worker(1).start()


class RealCatalogs(SyncTest):
    """The platforms' published sample catalogs, when ../shared/data is
    there: seeded into the simulators, then pull and push over them."""

    def load(self, platform, filename, stocked):
        path = fixtures.shared_data(filename)
        if path is None:
            self.skipTest("%s not found (../shared/data absent)" % filename)
        import subprocess
        p = subprocess.run(
            ["/usr/bin/python3", harness.ROOT + "/tests/sim/seed_from_csv.py",
             "--platform", platform, path], capture_output=True, check=True)
        items = json.loads(p.stdout)["items"]
        self.assertGreater(len(items), 0)
        if stocked:
            # The samples carry few or no stock levels: give every item
            # one, so pull and push run over all the catalog's SKU shapes.
            for i, it in enumerate(items):
                it["tracked"] = True
                it["qty"] = i % 7
        # The warehouse knows each SKU once, trimmed.
        units = {}
        for it in items:
            t = (it.get("sku") or "").strip()
            if t and t not in units:
                units[t] = {"stock": {"PICK": 3}}
        return Client(platform, units, items), items

    def check(self, platform, filename):
        for stocked in (False, True):
            c, items = self.load(platform, filename, stocked)
            # What the store itself reports (a simulator, like the
            # platform, refuses stock on external or grouped products).
            state = c.sim.state()
            counted = [i for i in state if (i.get("sku") or "").strip()
                       and i.get("tracked", True)
                       and i.get("qty") is not None]
            pull = c.run("pull", timeout=180)
            self.assertIn(pull["state"], ("succeeded", "partial"), pull)
            dup = len(listed(pull, "duplicated_on_store"))
            # Unknown is not zero: untracked and unknown items are skipped,
            # every counted item is applied or unchanged.
            if not dup:
                self.assertEqual(pull["changed"] + pull["unchanged"],
                                 len(counted), pull)
            self.assertEqual(pull["failed"], 0, pull)
            if not stocked:
                self.assertEqual(c.movements(),
                                 len([i for i in counted if i["qty"] != 3]))
                continue
            push = c.run("push", "--all", timeout=180)
            if push["state"] == "blocked":
                push = c.run("push", "--all", "--bypass-guardrail",
                             timeout=180)
            self.assertEqual(push["state"], "succeeded", push)
            self.assertEqual(push["failed"], 0, push)
            self.assertEqual(push["changed"], pull["changed"] +
                             pull["unchanged"], push)

    def test_shopify_sample_catalog(self):
        self.check("shopify", "shopify-product-template.csv")

    def test_woocommerce_sample_catalog(self):
        self.check("woocommerce", "woocommerce-sample-products.csv")


if __name__ == "__main__":
    unittest.main()

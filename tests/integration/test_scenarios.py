"""Field cases and rule scenarios against the store simulators, through
Kafka and the worker: C02 (a sale between read and write), C03 (bulk
zeroing blocked, then bypassed), C06 (throttling and a refused item in a
Shopify push), a discontinued unit left untouched and a unit whose only
stock is non-pickable pushed as 0. Each test ends with stocksync verify."""

import unittest

import harness
from fixtures import Client, listed, verify


class Scenarios(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.fresh_db()
        cls.worker = harness.Worker(1).start()

    @classmethod
    def tearDownClass(cls):
        codes = cls.worker.stop(30)
        if any(c != 0 for c in codes):
            raise AssertionError("worker exited with %s" % codes)

    def tearDown(self):
        verify(self)

    def check_sale_during_push(self, platform):
        """C02: warehouse 10, store 10; a shopper buys one right after the
        push read the store. The store must end at 9, never 10."""
        c = Client(platform, {"PEN-01": {"stock": {"PICK": 10}},
                              "PEN-02": {"stock": {"PICK": 4}}},
                   [{"sku": "PEN-01", "qty": 10, "name": "Pen"},
                    {"sku": "PEN-02", "qty": 2, "name": "Pen 2"}])
        # The sale lands right after the push read the levels: Shopify's
        # adapter asks for the shop's location first, then reads.
        c.sim.hook("PEN-01", delta=-1, nth=2 if platform == "shopify" else 1)
        out = c.run("push", "--all")
        self.assertEqual(out["state"], "succeeded", out)
        lv = c.store_levels()
        self.assertEqual(lv["PEN-01"], 9, out)
        self.assertEqual(lv["PEN-02"], 4)

    def test_c02_sale_during_push_shopify(self):
        self.check_sale_during_push("shopify")

    def test_c02_sale_during_push_woocommerce(self):
        self.check_sale_during_push("woocommerce")

    def test_c03_bulk_zeroing_blocked_then_bypassed(self):
        n = 400
        units = {"Z-%03d" % i: {"stock": {"QUAR-C03": 10 + i % 41}}
                 for i in range(n)}
        store = [{"sku": "Z-%03d" % i, "qty": 10 + i % 41, "name": "Z"}
                 for i in range(n)]
        c = Client("woocommerce", units, store)
        out = c.run("push")
        self.assertEqual((out["state"], out["code"]),
                         ("blocked", "guardrail_blocked"), out)
        self.assertIn("max_zeroed", out["message"])
        g = out["detail"]["guardrail"]
        self.assertEqual((g["rule"], g["zeroed"], g["total_after"]),
                         ("max_zeroed", n, 0))
        blocked = out["detail"]["blocked"]
        self.assertEqual(blocked["count"], n)
        self.assertEqual(blocked["items"][0]["after"], 0)
        self.assertGreater(blocked["items"][0]["before"], 0)
        self.assertEqual(set(c.store_levels().values()) - {0}, set(
            10 + i % 41 for i in range(n)))  # nothing written
        dry = c.run("push", "--dry-run")
        self.assertEqual(dry["state"], "blocked")
        ok = c.run("push", "--bypass-guardrail")
        self.assertEqual(ok["state"], "succeeded", ok)
        self.assertEqual(ok["detail"]["guardrail"]["bypassed_by"],
                         harness.psql_value(
                             "SELECT requested_by FROM sync_requests WHERE "
                             "request_id = $1", ok["request_id"]))
        self.assertEqual(set(c.store_levels().values()), {0})

    def test_c06_throttle_and_refused_item(self):
        """C06: a Shopify push of 180 SKUs; the store throttles the write
        holding item 120 and refuses BOTTLE-01 every time."""
        units = {"S-%03d" % i: {"stock": {"PICK": 7}} for i in range(179)}
        units["BOTTLE-01"] = {"stock": {"PICK": 7}}
        store = [{"sku": s, "qty": 3, "name": s} for s in sorted(units)]
        c = Client("shopify", units, store, batch_size=20)
        c.sim.item_error("BOTTLE-01", code="ITEM_NOT_STOCKED_AT_LOCATION",
                         message="The item is not stocked at the location")
        # The location query and the read, then writes of 20: the sixth
        # write carries item 120 and gets HTTP 429 with Retry-After: 2.
        c.sim.fault("http429", count=1, skip=7, retry_after=2)
        out = c.run("push")
        self.assertEqual(out["state"], "partial", out)
        self.assertEqual((out["changed"], out["failed"]), (179, 1), out)
        self.assertEqual(listed(out, "failed"), ["BOTTLE-01"])
        self.assertIn("not stocked", out["detail"]["failed"]["items"][0]
                      ["reason"])
        lv = c.store_levels()
        self.assertEqual(lv["BOTTLE-01"], 3)
        self.assertEqual({lv[s] for s in units if s != "BOTTLE-01"}, {7})
        # The throttled write is sent again only after the 2 s the store
        # asked for; the rest of the push is bounded (the cost bucket may
        # ask for a few short waits of its own, never a second refusal of
        # BOTTLE-01's batch).
        log = c.sim.log()
        throttled = [e for e in log if e.get("fault") == "http429"]
        self.assertEqual(len(throttled), 1)
        after = [e for e in log if e["t"] > throttled[0]["t"]]
        self.assertGreaterEqual(after[0]["t"] - throttled[0]["t"], 1.9)
        self.assertLessEqual(len(log), 2 + 9 + 1 + 9, log)
        self.assertEqual(out["attempts"], 1)

    def test_discontinued_left_untouched(self):
        c = Client("woocommerce",
                   {"OLD": {"stock": {"PICK": 2}, "status": "discontinued"},
                    "NEW": {"stock": {"PICK": 5}}},
                   [{"sku": "OLD", "qty": 9, "name": "Old"},
                    {"sku": "NEW", "qty": 1, "name": "New"}])
        out = c.run("push", "--all")
        self.assertEqual(out["state"], "succeeded", out)
        self.assertEqual(c.store_levels(), {"OLD": 9, "NEW": 5})
        self.assertIn("OLD", listed(out, "skipped"))
        pull = c.run("pull")
        self.assertEqual(c.stock("OLD"), 2)
        self.assertIn("OLD", listed(pull, "skipped"))

    def test_only_non_pickable_stock_pushed_as_zero(self):
        c = Client("shopify", {"DMG": {"stock": {"QUAR-DMG": 12}},
                               "OK": {"stock": {"PICK": 3}}},
                   [{"sku": "DMG", "qty": 12, "name": "Damaged"},
                    {"sku": "OK", "qty": 3, "name": "Fine"}])
        out = c.run("push")
        self.assertEqual(out["state"], "succeeded", out)
        self.assertEqual(c.store_levels()["DMG"], 0)
        self.assertEqual(out["changed"], 1)


if __name__ == "__main__":
    unittest.main()

"""Warehouse and store set-ups shared by the end-to-end tests: a client
with units, stock and an integration in PostgreSQL, the same catalog on a
store simulator, and helpers to enqueue requests through the CLI and read
their outcome."""

import json
import os
import unittest

import harness

# Credentials each simulator accepts (any non-empty value by default).
CREDENTIALS = {
    "shopify": {"access_token": "shpat_test_token"},
    "woocommerce": {"consumer_key": "ck_test", "consumer_secret": "cs_test"},
    "bigcommerce": {"access_token": "bc-test-token"},
    "magento": {"access_token": "mg-test-token"},
}
STORE_PATH = {"bigcommerce": "/stores/test"}

_seq = [0]


def store_url(platform):
    base = harness.env().get("SIM_%s_URL" % platform.upper())
    if not base:
        raise unittest.SkipTest("no %s simulator in the stack" % platform)
    return base + STORE_PATH.get(platform, "")


def location(code, pickable=True, kind="pick"):
    return int(harness.psql_value(
        "INSERT INTO locations (code, pickable, kind) VALUES ($1, $2, $3) "
        "ON CONFLICT (code) DO UPDATE SET pickable = EXCLUDED.pickable "
        "RETURNING id", code, pickable, kind))


class Client:
    """One client, its pick location and one integration to a simulator.
    units: {sku: {"stock": {location_code: qty}, "status": ..., "name":
    ..., "allocated": qty}}; store: list of simulator seed items."""

    def __init__(self, platform, units, store, **settings):
        _seq[0] += 1
        self.platform = platform
        self.sim = harness.Sim(platform)
        self.name = "Client %d %s" % (_seq[0], platform)
        self.client_id = int(harness.psql_value(
            "INSERT INTO clients (name) VALUES ($1) RETURNING id", self.name))
        self.pick = location("PICK-%s" % platform.upper())
        cols = {"client_id": self.client_id, "platform": platform,
                "store_url": store_url(platform),
                "credentials": json.dumps(CREDENTIALS[platform]),
                "pull_location_id": self.pick}
        cols.update(settings)
        names = list(cols)
        self.integration = int(harness.psql_value(
            "INSERT INTO integrations (%s) VALUES (%s) RETURNING id"
            % (", ".join(names),
               ", ".join("$%d" % (i + 1) for i in range(len(names)))),
            *[cols[n] for n in names]))
        self.units = {}
        for sku, u in units.items():
            uid = int(harness.psql_value(
                "INSERT INTO inventory_units (client_id, sku, name, status) "
                "VALUES ($1, $2, $3, $4) RETURNING id", self.client_id, sku,
                u.get("name", "Item " + sku), u.get("status", "active")))
            self.units[sku] = uid
            for code, qty in u.get("stock", {}).items():
                loc = self.pick if code == "PICK" else location(
                    code, pickable=not code.startswith("QUAR"),
                    kind="pick" if not code.startswith("QUAR")
                    else "quarantine")
                if qty:
                    harness.psql(
                        "INSERT INTO movements (unit_id, location_id, "
                        "reason_code, qty_change, request_id) VALUES "
                        "($1, $2, 'receiving', $3, 'test-seed')",
                        uid, loc, qty)
            if u.get("allocated"):
                harness.psql("INSERT INTO order_allocations (unit_id, "
                             "order_ref, qty) VALUES ($1, 'ORD-1', $2)",
                             uid, u["allocated"])
        self.sim.reset()
        if store:
            self.sim.seed(store)

    def enqueue(self, action, *flags, unit=None, request_id=None):
        args = ["enqueue", action, "--integration", self.integration]
        if unit is not None:
            args += ["--unit", self.units.get(unit, unit)]
        if request_id:
            args += ["--id", request_id]
        args += list(flags)
        rc, out, err = harness.cli(*args)
        if rc != 0:
            raise AssertionError("enqueue failed: %s %s" % (out, err))
        return out.strip()

    def run(self, action, *flags, unit=None, timeout=90):
        return outcome(self.enqueue(action, *flags, unit=unit),
                       timeout=timeout)

    def stock(self, sku):
        """On hand at the pick location, plain row."""
        v = harness.psql_value(
            "SELECT qty FROM stock WHERE unit_id = $1 AND location_id = $2 "
            "AND serial = '' AND batch = '' AND lot = ''",
            self.units[sku], self.pick)
        return int(v) if v is not None else 0

    def store_levels(self):
        return {i["sku"]: i["qty"] for i in self.sim.state()}

    def movements(self, sku=None):
        if sku is None:
            return int(harness.psql_value(
                "SELECT count(*) FROM movements WHERE integration_id = $1",
                self.integration))
        return int(harness.psql_value(
            "SELECT count(*) FROM movements WHERE unit_id = $1 AND "
            "reason_code = 'ecommerce_pull'", self.units[sku]))


FINAL = ("succeeded", "partial", "failed", "rejected", "blocked", "skipped")


def outcome(request_id, timeout=90):
    """Waits for the request's final state; returns its row as a dict with
    detail parsed."""
    def done():
        rows = harness.psql(
            "SELECT state, error_code, error_message, seen, changed, "
            "unchanged, skipped, failed, detail::text, attempts FROM "
            "sync_requests WHERE request_id = $1", request_id)
        if rows and rows[0][0] in FINAL:
            return rows[0]
        return None
    r = harness.wait_for(done, timeout=timeout, interval=0.2,
                         what="request %s to finish" % request_id)
    return {"request_id": request_id, "state": r[0], "code": r[1],
            "message": r[2], "seen": int(r[3]), "changed": int(r[4]),
            "unchanged": int(r[5]), "skipped": int(r[6]),
            "failed": int(r[7]),
            "detail": json.loads(r[8]) if r[8] else None,
            "attempts": int(r[9])}


def listed(out, kind):
    """SKUs of one detail list."""
    d = out["detail"] or {}
    return [i["sku"] for i in d.get(kind, {}).get("items", [])]


def status_events(request_id, timeout=30, final=True):
    """The status events of a request from the status topic, in order;
    waits until the final one is there when final is set."""
    def have():
        msgs = [m.json() for m in harness.kafka_consume(
            harness.topic("status"), timeout=15)
            if m.key == request_id]
        if not final or any(e.get("final") for e in msgs):
            return msgs
        return None
    return harness.wait_for(have, timeout=timeout, interval=0.5,
                            what="status events of %s" % request_id)


def verify(test):
    """stocksync verify must pass: every test ends with it."""
    def ok():
        rc, out, err = harness.cli("verify")
        return (rc, out, err) if rc == 0 else None
    try:
        # Publishing is asynchronous: give the outbox a moment to drain.
        harness.wait_for(ok, timeout=30, interval=1,
                         what="stocksync verify to pass")
    except TimeoutError:
        rc, out, err = harness.cli("verify")
        test.fail("stocksync verify failed (rc %d):\n%s%s" % (rc, out, err))


def shared_data(name):
    """Path of a sample catalog under ../shared/data, or None."""
    for base in (os.environ.get("STOCKSYNC_SHARED_DATA"),
                 os.path.join(harness.ROOT, "..", "shared", "data")):
        if base and os.path.isfile(os.path.join(base, name)):
            return os.path.join(base, name)
    return None

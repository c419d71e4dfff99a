"""stocksync-exporter end to end (issue 3): movements written to the ledger,
their audit events on the audit topic, the CSV files the exporter makes of
them, on-demand exports through `stocksync enqueue export`, refusals,
failures, and kill -9 at any moment. Every CSV is read back with Python's
csv module and compared with the ledger. Field cases C09-C12."""

import csv
import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import uuid

import harness

try:
    import jsonschema
except ImportError:  # python3-jsonschema; the checks are skipped without it
    jsonschema = None

SCHEMAS = os.path.join(harness.ROOT, "schemas", "json")


def check_schema(name, doc):
    """Validates doc against schemas/json/<name>.schema.json."""
    if jsonschema is None:
        return
    with open(os.path.join(SCHEMAS, name + ".schema.json")) as f:
        jsonschema.validate(doc, json.load(f),
                            cls=jsonschema.Draft202012Validator)

HEADER = ["movement_id", "occurred_at", "reason_code", "note", "qty_before",
          "qty_after", "qty_change", "sku", "item_name", "location_code",
          "serial", "batch", "lot", "order_ref"]
TEXT_COLUMNS = ("note", "sku", "item_name", "location_code", "serial",
                "batch", "lot", "order_ref")
TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "'")

# Names and notes that break naive CSV writers and spreadsheets.
AWKWARD = [
    "plain",
    "comma, inside",
    'quote " inside',
    "line\nbreak",
    "crlf\r\nbreak",
    "Café Größe 42 – Ærø ✓",
    "=HYPERLINK(\"http://example.test\",\"x\")",
    "+1 found on recount",
    "-minus first",
    "@L77",
    "\tleading tab",
    "'apostrophe first",
    "trailing space ",
    "back\\slash \\N and \\t",
    "",
]


def suffix():
    return uuid.uuid4().hex[:10]


# ------------------------------------------------------------------ ledger

def new_client():
    return int(harness.psql_value(
        "INSERT INTO clients (name) VALUES ($1) RETURNING id",
        "exporter test " + suffix()))


def new_location(code=None):
    return int(harness.psql_value(
        "INSERT INTO locations (code) VALUES ($1) RETURNING id",
        code or "LOC-" + suffix()))


def new_unit(client, name="Item", sku=None):
    return int(harness.psql_value(
        "INSERT INTO inventory_units (client_id, sku, name) VALUES "
        "($1, $2, $3) RETURNING id", client, sku or "SKU-" + suffix(), name))


def move(unit, loc, change, at=None, note="", serial="", batch="", lot="",
         order_ref="", reason="adjust"):
    """One movement through the ledger trigger; returns its id."""
    return int(harness.psql_value(
        "INSERT INTO movements (occurred_at, unit_id, location_id, "
        "reason_code, note, qty_change, serial, batch, lot, order_ref, "
        "request_id) VALUES (coalesce($1::timestamptz, now()), $2, $3, $4, "
        "$5, $6, $7, $8, $9, $10, 'exporter-test') RETURNING id",
        at, unit, loc, reason, note, change, serial, batch, lot, order_ref))


def ledger(ids):
    """{id: {column: raw text}} straight from the tables (no CSV helper of
    ours involved), with occurred_at written the way the contract says."""
    rows = harness.psql(
        "SELECT m.id, to_char(m.occurred_at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS'), extract(microseconds FROM "
        "m.occurred_at)::bigint % 1000000, m.reason_code, m.note, "
        "m.qty_before, m.qty_after, m.qty_change, u.sku, u.name, l.code, "
        "m.serial, m.batch, m.lot, m.order_ref FROM movements m "
        "JOIN inventory_units u ON u.id = m.unit_id "
        "JOIN locations l ON l.id = m.location_id "
        "WHERE m.id = ANY ($1::bigint[])",
        "{%s}" % ",".join(str(i) for i in ids))
    out = {}
    for r in rows:
        frac = int(r[2])
        ts = r[1] + (".%06d" % frac if frac else "") + "Z"
        out[int(r[0])] = dict(zip(HEADER, [r[0], ts] + list(r[3:])))
    return out


def publish(topic, ids):
    """Sends the outbox's audit events of movements ids to topic, keyed by
    unit id, as the worker's outbox publisher does."""
    rows = harness.psql(
        "SELECT msg_key, convert_from(payload, 'UTF8') FROM outbox WHERE "
        "kind = 'movement' AND movement_id = ANY ($1::bigint[]) ORDER BY id",
        "{%s}" % ",".join(str(i) for i in ids))
    assert len(rows) == len(ids), "outbox holds %d of %d events" % (
        len(rows), len(ids))
    for _, payload in rows[:50]:
        check_schema("movement_event", json.loads(payload))
    produce_lines(topic, ["%s\x1f%s" % (k, p) for k, p in rows])


def produce_lines(topic, lines):
    """key\\x1fpayload lines, one message each, in one kcat run."""
    with tempfile.NamedTemporaryFile("w", encoding="utf-8",
                                     delete=False) as f:
        for line in lines:
            assert "\n" not in line
            f.write(line + "\n")
    try:
        subprocess.run(["kcat", "-b", harness.load_env()["STOCKSYNC_BROKERS"],
                        "-P", "-t", topic, "-K", "\x1f", "-q", "-l", f.name],
                       check=True, capture_output=True, timeout=120)
    finally:
        os.unlink(f.name)


# ------------------------------------------------------------------ CSV

def read_csv(path, bom=False):
    with open(path, "rb") as f:
        raw = f.read()
    text = raw.decode("utf-8-sig" if bom else "utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return rows[0], rows[1:]


def unneutralise(cell):
    return cell[1:] if cell.startswith("'") else cell


def audit_files(root):
    out = []
    for dirpath, _, files in os.walk(os.path.join(root, "audit")):
        if ".staging" in dirpath:
            continue
        for fn in files:
            if fn.endswith(".csv"):
                out.append(os.path.join(dirpath, fn))
    return sorted(out)


def audit_rows(root):
    """Every row of every audit file: [(path, row)]. A byte-order mark, if
    the exporter was told to write one, is dropped."""
    out = []
    for path in audit_files(root):
        header, rows = read_csv(path, bom=True)
        assert header == HEADER, (path, header)
        out.extend((path, r) for r in rows)
    return out


class ExporterCase(unittest.TestCase):
    """Topics of its own (so nothing else publishes into them), an export
    directory of its own, one exporter started with extra_env."""

    extra_env = {}
    start_exporter = True

    @classmethod
    def setUpClass(cls):
        harness.fresh_db()
        s = suffix()
        cls.topics = {
            "movements": "x%s.movements" % s,
            "export_requests": "x%s.export.requests" % s,
            "status": "x%s.status" % s,
            "audit_dlq": "x%s.movements.dlq" % s,
        }
        for name, parts in (("movements", 4), ("export_requests", 2),
                            ("status", 1), ("audit_dlq", 1)):
            harness.broker_control("topic %s %d" % (cls.topics[name], parts))
        cls.dir = tempfile.mkdtemp(prefix="exports-",
                                   dir=harness.stack_dir())
        cls.group = "exporter-test-" + s
        cls.exporter = None
        if cls.start_exporter:
            cls.exporter = harness.Exporter(1, extra_env=cls.env()).start()

    @classmethod
    def tearDownClass(cls):
        if cls.exporter is not None and cls.exporter.alive():
            codes = cls.exporter.stop(30)
            if codes != [0]:
                raise AssertionError("exporter exited with %s:\n%s" % (
                    codes, cls.exporter.log()[-3000:]))
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def env(cls, **more):
        e = {
            "STOCKSYNC_TOPIC_MOVEMENTS": cls.topics["movements"],
            "STOCKSYNC_TOPIC_EXPORT_REQUESTS": cls.topics["export_requests"],
            "STOCKSYNC_TOPIC_STATUS": cls.topics["status"],
            "STOCKSYNC_TOPIC_AUDIT_DLQ": cls.topics["audit_dlq"],
            "STOCKSYNC_EXPORTER_GROUP": cls.group,
            "STOCKSYNC_EXPORT_DIR": cls.dir,
            "STOCKSYNC_EXPORTER_FLUSH_MS": "200",
        }
        e.update(cls.extra_env)
        e.update(more)
        return e

    # -------------------------------------------------------------- helpers

    def wait_audit(self, ids, timeout=60):
        want = set(ids)

        def have():
            got = [int(r[0]) for _, r in audit_rows(self.dir)]
            return want <= set(got) and got
        return harness.wait_for(have, timeout, what="audit rows in files")

    def enqueue_export(self, client, units, frm=None, to=None):
        args = ["enqueue", "export", "--client", client, "--units",
                ",".join(str(u) for u in units)]
        if frm:
            args += ["--from", frm]
        if to:
            args += ["--to", to]
        rc, out, err = harness.cli(*args, extra_env=self.env())
        self.assertEqual(rc, 0, err)
        return out.strip()

    def status(self, request_id, timeout=60):
        """The export_requests row as `stocksync status --json` prints it,
        and the rc."""
        rc, out, err = harness.cli("status", request_id, "--json",
                                   "--timeout", timeout,
                                   extra_env=self.env())
        self.assertIn(rc, (0, 1), err)
        return rc, json.loads(out)

    def status_event(self, request_id, timeout=30):
        def find():
            for m in harness.kafka_consume(self.topics["status"]):
                if m.key == request_id:
                    check_schema("export_status", m.json())
                    return m.json()
            return None
        return harness.wait_for(find, timeout, what="status event")

    def send_request(self, payload, key=None):
        if not isinstance(payload, (bytes, str)):
            payload = json.dumps(payload)
        harness.kafka_produce(self.topics["export_requests"], key, payload)

    def export_ok(self, client, units, **kw):
        """Exports, checks status row, event, bytes and SHA-256; returns
        (path, header, rows)."""
        rid = self.enqueue_export(client, units, **kw)
        rc, st = self.status(rid)
        self.assertEqual(rc, 0, st)
        sent = [m.json() for m in harness.kafka_consume(
            self.topics["export_requests"]) if b'"%s"' % rid.encode()
            in m.payload]
        self.assertEqual(len(sent), 1)
        check_schema("export_request", sent[0])
        self.assertEqual(st["state"], "succeeded", st)
        path = st["path"]
        with open(path, "rb") as f:
            raw = f.read()
        self.assertEqual(st["bytes"], len(raw))
        self.assertEqual(st["sha256"], hashlib.sha256(raw).hexdigest())
        ev = self.status_event(rid)
        self.assertEqual((ev["state"], ev["path"], ev["rows"], ev["bytes"],
                          ev["sha256"]),
                         ("succeeded", path, st["rows"], st["bytes"],
                          st["sha256"]))
        header, rows = read_csv(path)
        self.assertEqual(st["rows"], len(rows))
        self.assertFalse([f for f in os.listdir(os.path.dirname(path))
                          if f.endswith(".tmp")])
        return path, header, rows

    def assert_rows_match_ledger(self, rows):
        """Each CSV row equals its ledger row, cell by cell."""
        ids = [int(r[0]) for r in rows]
        self.assertEqual(len(ids), len(set(ids)), "a movement repeats")
        want = ledger(ids)
        self.assertEqual(set(want), set(ids))
        for r in rows:
            got = dict(zip(HEADER, r))
            exp = want[int(r[0])]
            for col in HEADER:
                cell = got[col]
                if col in TEXT_COLUMNS:
                    # The documented rule, both ways.
                    self.assertEqual(cell.startswith("'"),
                                     exp[col].startswith(TRIGGERS),
                                     (col, cell, exp[col]))
                    cell = unneutralise(cell)
                self.assertEqual(cell, exp[col], (col, r))


class AuditAndExportTest(ExporterCase):
    # C11: the host's zone must not matter.
    extra_env = {"TZ": "Europe/Berlin", "STOCKSYNC_EXPORT_MAX_UNITS": "50"}

    def test_round_trip_awkward_text(self):
        client = new_client()
        loc = new_location("LAGER-SÜD-" + suffix())
        ids = []
        units = []
        for i, text in enumerate(AWKWARD):
            u = new_unit(client, name=text, sku="S,%d \"q\" %s" % (
                i, suffix()))
            units.append(u)
            where = {"serial": "SN-%d" % i, "batch": text, "lot": text}
            ids.append(move(u, loc, 5 + i, note=text, order_ref=text,
                            **where))
            ids.append(move(u, loc, -(i % 5) - 1, note=AWKWARD[-1 - i],
                            **where))
        publish(self.topics["movements"], ids)

        self.wait_audit(ids)
        rows = [r for _, r in audit_rows(self.dir) if int(r[0]) in ids]
        self.assertEqual(len(rows), len(ids))
        self.assert_rows_match_ledger(rows)
        self.assertTrue(any(int(r[6]) < 0 for r in rows))

        _, header, rows = self.export_ok(client, units)
        self.assertEqual(header, HEADER)
        self.assertEqual(sorted(int(r[0]) for r in rows), sorted(ids))
        self.assert_rows_match_ledger(rows)

    def test_c09_formulas_and_numbers(self):
        client = new_client()
        loc = new_location()
        u = new_unit(client, name='=HYPERLINK("http://example.test","x")')
        move(u, loc, 3, lot="@L77")
        mid = move(u, loc, -3, note="+1 found on recount", lot="@L77")
        publish(self.topics["movements"], [mid])
        self.wait_audit([mid])
        audit = [r for _, r in audit_rows(self.dir) if int(r[0]) == mid]
        _, _, rows = self.export_ok(client, [u])
        exported = [r for r in rows if int(r[0]) == mid]
        for r in audit + exported:
            cells = dict(zip(HEADER, r))
            self.assertEqual((cells["qty_change"], cells["qty_before"],
                              cells["qty_after"]), ("-3", "3", "0"))
            self.assertEqual(cells["item_name"],
                             "'=HYPERLINK(\"http://example.test\",\"x\")")
            self.assertEqual(cells["note"], "'+1 found on recount")
            self.assertEqual(cells["lot"], "'@L77")
        self.assertEqual(len(audit), 1)
        self.assertEqual(len(exported), 1)

    def test_c11_time_zones(self):
        client = new_client()
        loc = new_location()
        u = new_unit(client)
        a = move(u, loc, 2, at="2024-03-31T00:30:00Z")
        b = move(u, loc, -1, at="2024-03-31T01:30:00Z")
        publish(self.topics["movements"], [b, a])  # out of order
        self.wait_audit([a, b])
        audit = {int(r[0]): (p, r) for p, r in audit_rows(self.dir)}
        self.assertEqual(audit[a][1][1], "2024-03-31T00:30:00Z")
        self.assertEqual(audit[b][1][1], "2024-03-31T01:30:00Z")
        self.assertIn("/2024-03-31/", audit[a][0])

        _, _, rows = self.export_ok(client, [u])
        self.assertEqual([(int(r[0]), r[1]) for r in rows],
                         [(a, "2024-03-31T00:30:00Z"),
                          (b, "2024-03-31T01:30:00Z")])
        # The window is [from, to): only the 01:30 movement is in it.
        _, _, rows = self.export_ok(client, [u], frm="2024-03-31T03:00:00+02:00",
                                    to="2024-03-31T02:00:00Z")
        self.assertEqual([int(r[0]) for r in rows], [b])

    def test_c12_one_row_per_movement(self):
        client = new_client()
        loc = new_location()
        u1 = new_unit(client, name="serial item")
        u2 = new_unit(client, name="bulk item")
        harness.psql("INSERT INTO order_allocations (unit_id, order_ref, "
                     "qty) VALUES ($1, '#1001', 1), ($1, '#1002', 1)", u1)
        ids = [move(u1, loc, 1, serial="SN-1"), move(u1, loc, 1,
                                                   serial="SN-2"),
               move(u2, loc, 10)]
        a = move(u1, loc, -1, serial="SN-1", order_ref="#1001",
                 reason="pick")
        b = move(u2, loc, -2, reason="adjust")
        # One change touching two serials is two movements.
        two = [move(u1, loc, -1, serial="SN-2", order_ref="#1002"),
               move(u1, loc, 1, serial="SN-2", order_ref="#1002")]
        ids += [a, b] + two
        publish(self.topics["movements"], ids)
        self.wait_audit(ids)
        _, _, rows = self.export_ok(client, [u1, u2])
        self.assertEqual(sorted(int(r[0]) for r in rows), sorted(ids))
        byid = {int(r[0]): dict(zip(HEADER, r)) for r in rows}
        self.assertEqual((byid[a]["serial"], byid[a]["order_ref"]),
                         ("SN-1", "#1001"))
        self.assertEqual([byid[b][c] for c in ("serial", "batch", "lot",
                                                "order_ref")],
                         ["", "", "", ""])
        audit = [r for _, r in audit_rows(self.dir) if int(r[0]) in ids]
        self.assertEqual(len(audit), len(ids))
        self.assert_rows_match_ledger(audit)

    def test_late_events_land_in_their_day(self):
        client = new_client()
        loc = new_location()
        u = new_unit(client)
        new = move(u, loc, 5, at="2024-05-02T10:00:00Z")
        publish(self.topics["movements"], [new])
        self.wait_audit([new])
        late = move(u, loc, 1, at="2024-04-30T23:59:59.999999Z")
        publish(self.topics["movements"], [late])
        self.wait_audit([late])
        where = {int(r[0]): p for p, r in audit_rows(self.dir)}
        self.assertIn("client-%d/2024-05-02/" % client, where[new])
        self.assertIn("client-%d/2024-04-30/" % client, where[late])

    def test_audit_seal_failure_is_retried(self):
        """A batch that cannot be written stays and is retried; nothing is
        lost or doubled once the cause is gone."""
        client = new_client()
        loc = new_location()
        u = new_unit(client)
        blocker = os.path.join(self.dir, "audit", "client-%d" % client)
        os.makedirs(os.path.dirname(blocker), exist_ok=True)
        with open(blocker, "w") as f:
            f.write("a file where the client directory goes\n")
        failures = self.exporter.log().count("event=audit_seal_failed")
        ids = [move(u, loc, 1) for _ in range(3)]
        publish(self.topics["movements"], ids)
        harness.wait_for(lambda: self.exporter.log().count(
            "event=audit_seal_failed") > failures, 30,
            what="a failed seal")
        self.assertIn("code=output_unwritable", self.exporter.log())
        self.assertEqual([r for _, r in audit_rows(self.dir)
                          if int(r[0]) in ids], [])
        os.unlink(blocker)
        rows = [r for r in self.wait_audit(ids, timeout=60) if r in ids]
        self.assertEqual(sorted(rows), sorted(ids))
        self.assertTrue(self.exporter.alive())

    def test_unreadable_events_go_to_the_dlq(self):
        client = new_client()
        loc = new_location()
        u = new_unit(client)
        good = move(u, loc, 4)
        bad = ["1\x1fnot json", "1\x1f{\"event\":\"movement\"}",
               "1\x1f{\"event\":\"movement\",\"movement_id\":\"x\"}",
               "1\x1f[1,2,3]"]
        produce_lines(self.topics["movements"], bad)
        publish(self.topics["movements"], [good])
        self.wait_audit([good])
        dead = harness.kafka_wait(self.topics["audit_dlq"],
                                  lambda ms: len(ms) >= 4 and ms)
        codes = sorted(m.header("error_code") for m in dead)
        self.assertEqual(codes, ["bad_field", "missing_field", "not_json",
                                 "not_json"])
        self.assertEqual(sorted(m.payload for m in dead),
                         sorted(line.split("\x1f", 1)[1].encode()
                                for line in bad))
        self.assertTrue(all(m.header("source_topic")
                            == self.topics["movements"] for m in dead))
        harness.wait_for(lambda: "dead_letters_total=4" in
                         self.exporter.log(), 10, what="the DLQ count")

    def test_refusals(self):
        client = new_client()
        other = new_client()
        loc = new_location()
        mine = new_unit(client)
        theirs = new_unit(other, name="secret")
        move(theirs, loc, 1)
        now = "2026-01-01T00:00:00Z"

        def req(**kw):
            r = {"request_id": "bad-" + suffix(), "client_id": client,
                 "unit_ids": [mine], "requested_by": "test",
                 "requested_at": now}
            r.update(kw)
            return {k: v for k, v in r.items() if v is not None}

        cases = [
            (req(client_id=None), "missing_field"),
            (req(unit_ids=None), "missing_field"),
            (req(requested_by=None), "missing_field"),
            (req(unit_ids=[]), "bad_field"),
            (req(unit_ids=list(range(1, 52))), "bad_field"),
            (req(unit_ids=["7"]), "bad_field"),
            (req(unit_ids=[mine, 987654321]), "unknown_unit"),
            (req(unit_ids=[mine, theirs]), "unknown_unit"),
            (req(**{"from": "2024-02-01T00:00:00Z",
                    "to": "2024-01-01T00:00:00Z"}), "bad_time_range"),
            (req(**{"from": "yesterday"}), "bad_timestamp"),
            (req(**{"to": "2024-01-01T00:00:00"}), "bad_timestamp"),
            (req(requested_at="2024-02-30T00:00:00Z"), "bad_timestamp"),
            (req(extra=1), "unknown_field"),
            (req(request_id="../../etc/passwd"), "bad_field"),
        ]
        for body, code in cases:
            self.send_request(body, key=str(client))
        self.send_request(req(), key=str(client + 1000))  # key mismatch
        self.send_request("not json at all {", key=str(client))

        # Refusals are announced; those with a usable id are recorded.
        for body, code in cases:
            if body["request_id"].startswith("bad-"):
                rc, st = self.status(body["request_id"])
                self.assertEqual((rc, st["state"], st["error_code"]),
                                 (1, "rejected", code), body)
                ev = self.status_event(body["request_id"])
                self.assertEqual(ev["error"]["code"], code)
        events = harness.kafka_wait(
            self.topics["status"],
            lambda ms: len([m for m in ms if m.json()["request_id"]
                            is None]) >= 2 and ms)
        self.assertEqual(sorted(m.json()["error"]["code"] for m in events
                                if m.json()["request_id"] is None),
                         ["bad_field", "not_json"])
        for m in events:
            check_schema("export_status", m.json())
        self.assertTrue(any(m.json()["error"]["code"] == "key_mismatch"
                            for m in harness.kafka_consume(
                                self.topics["status"])
                            if m.json()["error"]))

        # Another client's unit reads exactly like an unknown one.
        msgs = {}
        for body, code in cases:
            if code == "unknown_unit":
                _, st = self.status(body["request_id"])
                msgs[body["unit_ids"][1]] = st["error_message"]
        self.assertEqual(msgs[theirs].replace(str(theirs), "N"),
                         msgs[987654321].replace("987654321", "N"))
        self.assertNotIn("secret", msgs[theirs])
        self.assertFalse(os.path.exists(os.path.join(
            self.dir, "requested", "client-%d" % other)))

        # Still running, and still exporting.
        self.assertTrue(self.exporter.alive())
        self.export_ok(client, [mine])

    def test_unwritable_directory(self):
        client = new_client()
        loc = new_location()
        u = new_unit(client)
        move(u, loc, 1)
        os.makedirs(os.path.join(self.dir, "requested"), exist_ok=True)
        blocker = os.path.join(self.dir, "requested", "client-%d" % client)
        with open(blocker, "w") as f:
            f.write("a file where the directory should be\n")
        rid = self.enqueue_export(client, [u])
        rc, st = self.status(rid)
        self.assertEqual((rc, st["state"], st["error_code"], st["path"]),
                         (1, "failed", "output_unwritable", None))
        self.assertEqual(self.status_event(rid)["error"]["code"],
                         "output_unwritable")
        os.unlink(blocker)
        self.assertTrue(self.exporter.alive())
        path, _, rows = self.export_ok(client, [u])
        self.assertEqual(len(rows), 1)

    def test_same_request_twice_is_one_export(self):
        client = new_client()
        loc = new_location()
        u = new_unit(client)
        move(u, loc, 1)
        body = {"request_id": "twice-" + suffix(), "client_id": client,
                "unit_ids": [u], "requested_by": "t",
                "requested_at": "2026-01-01T00:00:00Z"}
        self.send_request(body, key=str(client))
        rc, first = self.status(body["request_id"])
        self.assertEqual(rc, 0)
        mtime = os.stat(first["path"]).st_mtime_ns
        self.send_request(body, key=str(client))
        harness.wait_for(lambda: len([
            m for m in harness.kafka_consume(self.topics["status"])
            if m.key == body["request_id"]]) >= 2, 30, what="second event")
        _, again = self.status(body["request_id"])
        self.assertEqual(again["sha256"], first["sha256"])
        self.assertEqual(again["attempts"], 2)
        self.assertEqual(os.stat(first["path"]).st_mtime_ns, mtime)


class ByteOrderMarkTest(ExporterCase):
    extra_env = {"STOCKSYNC_EXPORT_BOM": "1"}

    def test_c10_bom_and_utf8_across_chunks(self):
        client = new_client()
        loc = new_location("LAGER-SÜD-" + suffix())
        name = "Café Größe 42 – Ærø"
        u = new_unit(client, name=name)
        # ~3000 rows: far more than one 256 KiB write.
        harness.psql("INSERT INTO movements (unit_id, location_id, "
                     "reason_code, note, qty_change, request_id) SELECT "
                     "$1, $2, 'receipt', repeat('Größe ', 20) || i, 1, "
                     "'bom' FROM generate_series(1, 3000) i", u, loc)
        ids = [int(r[0]) for r in harness.psql(
            "SELECT id FROM movements WHERE unit_id = $1", u)]
        publish(self.topics["movements"], ids)
        self.wait_audit(ids)
        path, _, _ = self.export_ok_bom(client, [u])
        for p in [path] + audit_files(self.dir):
            with open(p, "rb") as f:
                raw = f.read()
            self.assertTrue(raw.startswith(b"\xef\xbb\xbf"), p)
            self.assertEqual(raw.count(b"\xef\xbb\xbf"), 1, p)
            raw.decode("utf-8")  # valid throughout
            header, rows = read_csv(p, bom=True)
            self.assertEqual(header[0], "movement_id")
            self.assertTrue(all(r[8] == name for r in rows))
        self.assertGreater(os.path.getsize(path), 256 * 1024)

    def export_ok_bom(self, client, units):
        rid = self.enqueue_export(client, units)
        rc, st = self.status(rid)
        self.assertEqual((rc, st["state"]), (0, "succeeded"), st)
        return st["path"], None, None


class NoBomByDefaultTest(ExporterCase):
    def test_c10_off_by_default(self):
        client = new_client()
        loc = new_location()
        u = new_unit(client, name="Café")
        mid = move(u, loc, 1)
        publish(self.topics["movements"], [mid])
        self.wait_audit([mid])
        path, header, _ = self.export_ok(client, [u])
        for p in [path] + audit_files(self.dir):
            with open(p, "rb") as f:
                self.assertTrue(f.read(12) == b"movement_id,", p)


class DiskFullTest(ExporterCase):
    """The export directory on a 1 MiB tmpfs: an export that does not fit
    fails with disk_full and leaves nothing under any name."""

    start_exporter = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mnt = os.path.join(cls.dir, "small")
        os.makedirs(cls.mnt)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs",
                            cls.mnt], capture_output=True)
        if p.returncode != 0:
            raise unittest.SkipTest("cannot mount a tmpfs here: %s"
                                    % p.stderr.decode().strip())
        cls.exporter = harness.Exporter(
            1, extra_env=cls.env(STOCKSYNC_EXPORT_DIR=cls.mnt)).start()

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.exporter is not None:
                cls.exporter.stop(30)
        finally:
            subprocess.run(["umount", cls.mnt], capture_output=True)
            super().tearDownClass()

    def test_disk_full(self):
        client = new_client()
        loc = new_location()
        u = new_unit(client, name="x" * 200)
        harness.psql("INSERT INTO movements (unit_id, location_id, "
                     "reason_code, note, qty_change, request_id) SELECT "
                     "$1, $2, 'receipt', repeat('n', 300), 1, 'full' FROM "
                     "generate_series(1, 5000) i", u, loc)
        rid = self.enqueue_export(client, [u])
        rc, st = self.status(rid)
        self.assertEqual((rc, st["state"], st["error_code"]),
                         (1, "failed", "disk_full"), st)
        d = os.path.join(self.mnt, "requested", "client-%d" % client)
        self.assertEqual(os.listdir(d), [])
        # Room again: the same exporter serves the next request.
        small = new_unit(client)
        move(small, loc, 1)
        rid = self.enqueue_export(client, [small])
        rc, st = self.status(rid)
        self.assertEqual((rc, st["state"]), (0, "succeeded"), st)


class CrashTest(ExporterCase):
    """kill -9 at random moments while the exporter streams thousands of
    movements in small batches (and while it writes an on-demand export);
    after the last restart every movement is in the files exactly once."""

    start_exporter = False
    N = 10000

    def test_kill_minus_nine_repeatedly(self):
        client = new_client()
        loc = new_location()
        units = [new_unit(client, name="crash %d, \"q\"" % i)
                 for i in range(40)]
        harness.psql("INSERT INTO movements (unit_id, location_id, "
                      "reason_code, note, qty_change, request_id) SELECT "
                      "($1::bigint[])[1 + i % 40], $2, 'receipt', "
                      "'row ' || i, 1 + i % 3, 'crash' FROM "
                      "generate_series(0, $3::int - 1) i",
                      "{%s}" % ",".join(map(str, units)), loc, self.N)
        ids = [int(r[0]) for r in harness.psql(
            "SELECT id FROM movements WHERE request_id = 'crash'")]
        self.assertEqual(len(ids), self.N)
        publish(self.topics["movements"], ids)

        env = self.env(STOCKSYNC_EXPORTER_FLUSH_ROWS="17",
                       STOCKSYNC_EXPORTER_FLUSH_MS="50")
        rnd = random.Random(3)
        kills = 0
        progress = []
        for _ in range(6):
            ex = harness.Exporter(1, extra_env=env).start()
            # Every exporter of this test process appends to one log file:
            # wait for a seal of this run (the group join takes seconds),
            # then kill at a random point after it.
            seals = ex.log().count("audit_sealed")
            harness.wait_for(lambda: ex.log().count("audit_sealed") > seals
                             or not ex.alive(), 60, what="a first seal")
            time.sleep(rnd.uniform(0.0, 0.15))
            ex.kill()
            kills += 1
            progress.append(len(audit_rows(self.dir)))
            if progress[-1] >= self.N:
                break

        # Also die in the middle of an on-demand export.
        ex = harness.Exporter(1, extra_env=env).start()
        rid = self.enqueue_export(client, units)
        harness.wait_for(lambda: any(
            f.endswith(".tmp") for f in os.listdir(os.path.join(
                self.dir, "requested", "client-%d" % client)))
            if os.path.isdir(os.path.join(self.dir, "requested",
                                          "client-%d" % client)) else False,
            60, interval=0.005, what="a half-written export")
        ex.kill()
        kills += 1

        ex = harness.Exporter(1, extra_env=env).start()
        try:
            rows = self.wait_audit(ids, timeout=120)
            rc, st = self.status(rid, timeout=60)
            self.assertEqual((rc, st["state"]), (0, "succeeded"), st)
        finally:
            codes = ex.stop(30)
        self.assertEqual(codes, [0])

        got = [int(r[0]) for _, r in audit_rows(self.dir)]
        self.assertEqual(len(got), len(set(got)), "a movement was written "
                         "twice after kill -9")
        self.assertEqual(sorted(got), sorted(ids))
        self.assertEqual(os.listdir(os.path.join(self.dir, "audit",
                                                 ".staging")), [])
        _, export_rows = read_csv(st["path"])
        self.assertEqual(sorted(int(r[0]) for r in export_rows),
                         sorted(ids))
        self.assertEqual(len(rows), self.N)
        self.assertGreaterEqual(kills, 2)
        print("  kills=%d files=%d rows after each kill=%s" % (
            kills, len(audit_files(self.dir)), progress))


if __name__ == "__main__":
    unittest.main()

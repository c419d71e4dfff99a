"""Smoke test of the local stack: PostgreSQL answers, a message goes
through the devbroker and back, every simulator answers, and the harness'
own quoting holds."""

import glob
import os
import subprocess
import unittest
import uuid

import harness

# The topics deploy/stack creates and their partition counts.
TOPICS = {
    "requests": 6,
    "status": 3,
    "movements": 6,
    "dlq": 1,
    "export_requests": 3,
    "audit_dlq": 1,
}


class PostgresTest(unittest.TestCase):
    def test_reachable_on_loopback(self):
        rows = harness.psql("SELECT current_database(), "
                            "current_setting('listen_addresses')")
        self.assertEqual(rows, [("stocksync", "127.0.0.1")])
        url = harness.load_env()["STOCKSYNC_DATABASE_URL"]
        self.assertRegex(url,
                         r"^postgresql://postgres@127\.0\.0\.1:\d+/stocksync$")

    def test_params_are_quoted_not_spliced(self):
        nasty = "it's a \"test\"; DROP TABLE x; -- \n|line two\\"
        rows = harness.psql("SELECT $1::text, $2::int + 1, $3::text, "
                            "$1::text = $4::text", nasty, 41, None, nasty)
        self.assertEqual(rows, [(nasty, "42", None, "t")])

    def test_rows_and_statements(self):
        rows = harness.psql("SELECT g, g * g FROM generate_series(1, 3) g; "
                            "SELECT 'a|b', ''")
        self.assertEqual(rows, [("1", "1"), ("2", "4"), ("3", "9"),
                                ("a|b", "")])
        self.assertEqual(harness.psql("SELECT 1 WHERE false"), [])

    def test_error_raises(self):
        with self.assertRaises(harness.PsqlError):
            harness.psql("SELECT * FROM no_such_table_here")


class KafkaTest(unittest.TestCase):
    def test_configured_topics_exist(self):
        meta = harness.kafka_metadata()
        for name, parts in TOPICS.items():
            with self.subTest(topic=name):
                self.assertEqual(meta.get(harness.topic(name)), parts)

    def test_round_trip(self):
        # A topic of its own, made through the control FIFO: this also
        # proves the FIFO works (an auto-created topic has 4 partitions).
        topic = "smoke.%s" % uuid.uuid4().hex[:12]
        harness.broker_control("topic %s 2" % topic)
        harness.wait_for(lambda: harness.kafka_metadata().get(topic) == 2,
                         timeout=10, what="topic %s with 2 partitions" % topic)

        token = uuid.uuid4().hex
        payload = ('{"token": "%s"}\nsecond line\x00\xff' % token).encode(
            "latin-1")
        harness.kafka_produce(topic, "key-" + token, payload, partition=1,
                              headers={"h": "v"})
        harness.kafka_produce(topic, "empty-" + token, b"", partition=0)

        msgs = harness.kafka_wait(topic, lambda m: len(m) >= 2 and m,
                                  timeout=20)
        self.assertEqual(len(msgs), 2)
        by_key = {m.key: m for m in msgs}
        m = by_key["key-" + token]
        self.assertEqual((m.topic, m.partition, m.offset), (topic, 1, 0))
        self.assertEqual(m.payload, payload)
        self.assertEqual(m.header("h"), "v")
        e = by_key["empty-" + token]
        self.assertEqual((e.partition, e.payload), (0, b""))

        # A partition filter reads only that partition.
        only0 = harness.kafka_consume(topic, partition=0)
        self.assertEqual([x.key for x in only0], ["empty-" + token])

    def test_unknown_control_command_keeps_broker_running(self):
        harness.broker_control("no-such-command 1 2")
        log = os.path.join(harness.stack_dir(), "logs", "broker.log")
        harness.wait_for(lambda: "no-such-command" in open(log).read(),
                         timeout=5, what="the broker to log the command")
        self.assertIn("code=unknown_action", open(log).read())
        self.assertIn(harness.topic("requests"), harness.kafka_metadata())


class SimulatorTest(unittest.TestCase):
    def test_every_simulator_is_running(self):
        found = sorted(os.path.basename(f)[:-len("_sim.py")] for f in
                       glob.glob(os.path.join(harness.ROOT, "tests", "sim",
                                              "*_sim.py")))
        self.assertEqual(harness.sim_platforms(), found)

    def test_each_answers_state(self):
        platforms = harness.sim_platforms()
        if not platforms:
            self.skipTest("no simulator under tests/sim/")
        for platform in platforms:
            with self.subTest(platform=platform):
                sim = harness.Sim(platform)
                self.assertIsInstance(sim.state(), list)
                self.assertIsInstance(sim.log(), list)
                self.assertTrue(sim.url.startswith("http://127.0.0.1:"))


class StackScriptTest(unittest.TestCase):
    def test_status_says_up(self):
        p = subprocess.run([os.path.join(harness.ROOT, "deploy", "stack"),
                            "status"], capture_output=True, text=True,
                           env=harness.env())
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        for part in ["postgres", "broker"] + ["sim-" + s for s in
                                              harness.sim_platforms()]:
            self.assertRegex(p.stdout, r"(?m)^%s\s+up\s" % part)


if __name__ == "__main__":
    unittest.main()

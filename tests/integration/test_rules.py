"""The push and pull rules (issue 4) against real PostgreSQL: runs the
table-driven rules-pg program (tests/integration/rules_pg.c) on a database
of its own, freshly migrated, and requires every case to pass."""

import os
import subprocess
import unittest

import harness

DB = "stocksync_rules"


class RulesAgainstPostgres(unittest.TestCase):
    def test_rule_table(self):
        harness.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB,
                     database="postgres")
        harness.psql("CREATE DATABASE %s" % DB, database="postgres")
        url = harness.env()["STOCKSYNC_DATABASE_URL"].rsplit("/", 1)[0] \
            + "/" + DB
        try:
            rc, out, err = harness.cli("migrate", extra_env={
                "STOCKSYNC_DATABASE_URL": url})
            self.assertEqual(rc, 0, out + err)
            p = subprocess.run([harness.binary("tests/rules-pg")],
                               env=harness.env(STOCKSYNC_DATABASE_URL=url),
                               capture_output=True, timeout=300)
            text = p.stdout.decode(errors="replace") + \
                p.stderr.decode(errors="replace")
            self.assertEqual(p.returncode, 0, text)
            self.assertIn("PASSED", text)
            self.assertNotIn("FAILED", text)
        finally:
            harness.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB,
                         database="postgres")


if __name__ == "__main__":
    unittest.main()

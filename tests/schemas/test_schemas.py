"""Every JSON Schema under schemas/json is itself valid, and its examples
agree with it: schemas/json/examples/<name>/*.json and .../valid/*.json
must validate against <name>.schema.json, .../invalid/*.json must not
(except files that are not JSON at all or not UTF-8, which no schema can
judge and the parsers reject first). The C parser reads the same files
(tests/unit/test_request.c)."""

import glob
import json
import os
import sys
import unittest

import jsonschema

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMAS = os.path.join(ROOT, "schemas", "json")


def load_schema(name):
    with open(os.path.join(SCHEMAS, name + ".schema.json")) as f:
        return json.load(f)


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    return dict(pairs)


def examples(name, sub):
    d = os.path.join(SCHEMAS, "examples", name)
    if sub:
        d = os.path.join(d, sub)
    return sorted(glob.glob(os.path.join(d, "*.json")))


class SchemaExamples(unittest.TestCase):
    def test_schemas_are_valid(self):
        names = glob.glob(os.path.join(SCHEMAS, "*.schema.json"))
        self.assertGreaterEqual(len(names), 2)
        for path in names:
            with open(path) as f:
                schema = json.load(f)
            jsonschema.Draft202012Validator.check_schema(schema)

    def test_examples(self):
        checked = 0
        for path in glob.glob(os.path.join(SCHEMAS, "*.schema.json")):
            name = os.path.basename(path)[:-len(".schema.json")]
            v = jsonschema.Draft202012Validator(load_schema(name))
            for ex in examples(name, None) + examples(name, "valid"):
                with open(ex, encoding="utf-8") as f:
                    doc = json.load(f)
                errs = list(v.iter_errors(doc))
                self.assertEqual(errs, [], "%s: %s" % (ex, errs[:1]))
                checked += 1
            for ex in examples(name, "invalid"):
                with open(ex, "rb") as f:
                    raw = f.read()
                try:
                    doc = json.loads(raw.decode("utf-8"),
                                     object_pairs_hook=no_duplicates)
                except (UnicodeDecodeError, ValueError):
                    # Not JSON, not UTF-8, or a key twice: refused before
                    # any schema applies (the C parser's job).
                    checked += 1
                    continue
                if os.path.basename(ex).startswith("bad_field.time"):
                    # A date like Feb 30 matches the pattern; only the
                    # parser's calendar check catches it.
                    continue
                self.assertFalse(v.is_valid(doc),
                                 "%s validates but should not" % ex)
                checked += 1
        self.assertGreaterEqual(checked, 10)


if __name__ == "__main__":
    sys.exit(unittest.main())

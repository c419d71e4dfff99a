#!/usr/bin/python3
"""Converts a platform's published product CSV into simulator seed items.

  python3 tests/sim/seed_from_csv.py --platform woocommerce FILE > items.json
  python3 tests/sim/seed_from_csv.py --platform shopify FILE > items.json

The output is the body of POST /_sim/seed: {"items": [...]}, each item in
the format every simulator shares,
  {"sku": str, "qty": int|null, "name": str, "tracked": bool}
plus extras: "parent" (the parent product's SKU, or its title when it has
none: the item is a variation of it), "type", "virtual", "downloadable",
"status", "manage_stock": "parent", "product", "handle", "options".

What a level is when the file gives none: the files describe catalogs,
not stock. An item whose file row does not count stock (WooCommerce: empty
"Stock"; Shopify: empty "Variant Inventory Tracker") is seeded untracked
with qty null, as a store holds it. --assume-stock N instead makes such
items tracked, at the file's quantity when it has one and N otherwise, so
that pull and push have levels to move; items that can never hold stock of
their own (WooCommerce external, grouped and variable parents) stay
untracked either way. Rows that are not items (Shopify image-only rows) are
dropped. SKUs are kept byte for byte (mixed case, spaces).

Reads UTF-8 with or without a byte-order mark; standard CSV quoting
(names with commas, quoted newlines). Standard library only.
"""

import argparse
import csv
import json
import sys

WOO_NO_STOCK = ("external", "grouped", "variable")
WOO_STATUS = {"1": "publish", "0": "private", "-1": "draft"}


def read_rows(path):
    # utf-8-sig drops a leading byte-order mark when there is one.
    with open(path, newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def parse_qty(text):
    text = (text or "").strip()
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        # Exports sometimes write "12.0".
        v = float(text)
        if not v.is_integer():
            raise ValueError("quantity %r is not whole" % text)
        return int(v)


def level(file_tracked, file_qty, can_hold, assume):
    """(tracked, qty) for an item, per the rules in the module doc."""
    if not can_hold:
        return False, None
    if file_tracked:
        return True, file_qty
    if assume is None:
        return False, None
    return True, file_qty if file_qty is not None else assume


def woo_items(rows, assume):
    by_id = {}
    for r in rows:
        if (r.get("ID") or "").strip():
            by_id[r["ID"].strip()] = r

    def parent_ref(ref):
        # The Parent column holds a SKU, or "id:NN" for a row by ID.
        ref = (ref or "").strip()
        if ref.startswith("id:"):
            row = by_id.get(ref[3:].strip())
            if row is None:
                return ref
            return row.get("SKU") or row.get("Name") or ref
        return ref

    items = []
    for r in rows:
        flags = [t.strip() for t in (r.get("Type") or "simple").split(",")]
        kind = flags[0] or "simple"
        stock = (r.get("Stock") or "").strip()
        item = {"sku": r.get("SKU") or "", "name": r.get("Name") or ""}
        if kind == "variation":
            item["parent"] = parent_ref(r.get("Parent"))
        else:
            item["type"] = kind
        if "virtual" in flags:
            item["virtual"] = True
        if "downloadable" in flags:
            item["downloadable"] = True
        status = WOO_STATUS.get((r.get("Published") or "").strip())
        if status:
            item["status"] = status
        if kind == "variation" and stock.lower() == "parent":
            # Counted at the parent: the variation has no level of its own.
            item["manage_stock"] = "parent"
            item["tracked"], item["qty"] = False, None
        else:
            qty = parse_qty(stock)
            item["tracked"], item["qty"] = level(
                qty is not None, qty, kind not in WOO_NO_STOCK, assume)
        items.append(item)
    return items


def shopify_items(rows, assume):
    items = []
    product = {}
    for r in rows:
        handle = (r.get("Handle") or "").strip()
        if product.get("handle") != handle:
            # A product's title, options and status sit on its first row.
            product = {"handle": handle, "title": r.get("Title") or handle,
                       "status": (r.get("Status") or "").strip()}
        opts = [(r.get("Option%d Value" % i) or "").strip()
                for i in (1, 2, 3)]
        opts = [o for o in opts if o]
        sku = r.get("Variant SKU") or ""
        if not sku and not opts:
            continue  # an image row, not a variant
        name = product["title"]
        if opts and opts != ["Default Title"]:
            name = "%s - %s" % (name, " / ".join(opts))
        tracker = (r.get("Variant Inventory Tracker") or "").strip()
        qty = parse_qty(r.get("Variant Inventory Qty"))
        tracked, qty = level(tracker != "", qty, True, assume)
        item = {"sku": sku, "qty": qty, "name": name, "tracked": tracked,
                "product": product["title"], "handle": handle,
                "options": opts}
        if product["status"]:
            item["status"] = product["status"]
        items.append(item)
    # Products with more than one variant (or real options) become parents.
    for it in items:
        if it["options"] and it["options"] != ["Default Title"]:
            it["parent"] = it["product"]
    return items


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Convert a platform's sample product CSV into "
                    "simulator seed items ({\"items\": [...]} on stdout).")
    ap.add_argument("--platform", required=True,
                    choices=["woocommerce", "shopify"])
    ap.add_argument("--assume-stock", type=int, metavar="N",
                    help="seed items the file leaves untracked as tracked, "
                         "at the file's quantity or N")
    ap.add_argument("file")
    args = ap.parse_args(argv)

    try:
        rows = read_rows(args.file)
        conv = woo_items if args.platform == "woocommerce" else shopify_items
        items = conv(rows, args.assume_stock)
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as e:
        sys.stderr.write("seed_from_csv: %s: %s\n" % (args.file, e))
        return 1
    json.dump({"items": items}, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

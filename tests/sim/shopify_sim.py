#!/usr/bin/python3
"""Shopify GraphQL Admin API simulator for the stock-sync tests.

The subset the adapter uses, with the platform's own shapes:
  POST /admin/api/<YYYY-MM>/graphql.json   {"query", "variables"}
    query { location { id name } }          the primary location
    inventoryItems(first, after, query)     cursor pagination with
        { nodes { id sku tracked variant { displayName }
                  inventoryLevel(locationId) { quantities(names) } }
          pageInfo { hasNextPage endCursor } }
        query: sku:"A" OR sku:B ...  (matched case-insensitively, as a
        search does; the adapter must keep only exact matches)
    mutation inventorySetQuantities(input) @idempotent(key)
        2026-04+ rules: changeFromQuantity on every entry (explicit null
        skips the check), @idempotent required; userErrors
        {code, field, message}; one refused entry refuses the whole call
        (inventoryAdjustmentGroup null), a repeated key with the same input
        answers the first result without applying again.
The GraphQL document is recognised by keywords; arguments are read from the
document, as literals or $variables. Nothing else of GraphQL is checked.

Auth: X-Shopify-Access-Token; with SIM_SHOPIFY_TOKEN set exactly that token,
otherwise any token starting "shpat_". A refusal is HTTP 401 with
{"errors": "[API] Invalid API key or access token ..."}.

Cost throttle: a leaky bucket per simulator (1000 points, 50 points/s by
default, Shopify's standard figures). Each call needs its requested cost in
the bucket; the difference to the actual cost is refunded. An empty bucket
answers HTTP 200 with errors[].extensions.code "THROTTLED" and
extensions.cost. A requested cost above 1000 answers MAX_COST_EXCEEDED. The
"throttle" fault answers the same THROTTLED shape, with the bucket drained
to (requested cost - retry_after x restore rate), floored at 0: the request
fits again after retry_after seconds, or sooner when it costs less than
retry_after seconds of restore. Costs: 1 per object, a connection 2 plus
`first` x the node's objects (our list node: item, variant, level,
quantities = 4), a mutation 10.

Seed items (common to every simulator):
  {"sku": str, "qty": int|null, "name": str, "tracked": bool = true}
plus extras: "stocked": false (no inventory level at the location: the
level reads null and writes fail ITEM_NOT_STOCKED_AT_LOCATION). qty null
reads as a null "available" quantity. name is the variant's displayName.
Items live at the primary location gid://shopify/Location/1; location 2
("Overflow") exists and stocks nothing.

/_sim/state items: {"sku", "qty", "tracked", "name", "id", "stocked"}.
/_sim/set {"sku", "qty"} changes every item with that SKU.
/_sim/config {"bucket": 1000, "restore_rate": 50, "max_input": 250}
changes the store settings (reset restores the defaults).

Run: python3 tests/sim/shopify_sim.py --port-file F
"""

import base64
import json
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simcore  # noqa: E402

PATH_RE = re.compile(r"^/admin/api/(\d{4}-\d{2})/graphql\.json$")
ITEM_GID = "gid://shopify/InventoryItem/"
VARIANT_GID = "gid://shopify/ProductVariant/"
PRIMARY = "gid://shopify/Location/1"
LOCATIONS = {PRIMARY: "Main warehouse",
             "gid://shopify/Location/2": "Overflow"}
MAX_QUERY_COST = 1000
MUTATION_COST = 10
MAX_QTY = 1000000000
REASONS = {"correction", "cycle_count_available", "damaged",
           "movement_created", "movement_updated", "movement_received",
           "movement_canceled", "other", "promotion", "quality_control",
           "received", "reservation_created", "reservation_deleted",
           "reservation_updated", "restock", "safety_stock", "shrinkage"}
DEFAULTS = {"bucket": 1000.0, "restore_rate": 50.0, "max_input": 250}
JSON_CT = "application/json; charset=utf-8"


class Item:
    def __init__(self, num, spec):
        self.num = num
        self.sku = spec.get("sku")
        self.name = spec.get("name", "")
        self.qty = spec.get("qty")
        self.tracked = bool(spec.get("tracked", True))
        self.stocked = bool(spec.get("stocked", True))

    def gid(self):
        return ITEM_GID + str(self.num)


class ShopifyStore:
    def __init__(self):
        self.lock = threading.RLock()
        self.reset()

    def reset(self):
        with self.lock:
            self.items = []
            self.by_gid = {}
            self.next_num = 9001
            self.config = dict(DEFAULTS)
            self.available = self.config["bucket"]
            self.stamp = time.monotonic()
            self.idempotency = {}

    def seed(self, specs):
        for spec in specs:
            it = Item(self.next_num, spec)
            self.next_num += 1
            self.items.append(it)
            self.by_gid[it.gid()] = it
        return len(specs)

    def state(self):
        return [{"sku": it.sku, "qty": it.qty, "tracked": it.tracked,
                 "name": it.name, "id": it.gid(), "stocked": it.stocked}
                for it in self.items]

    def get_qty(self, sku):
        for it in self.items:
            if it.sku == sku:
                return it.qty
        return None

    def set_qty(self, sku, qty):
        found = False
        for it in self.items:
            if it.sku == sku:
                it.qty = qty
                found = True
        return found

    # The leaky bucket --------------------------------------------------
    def _leak(self):
        now = time.monotonic()
        self.available = min(self.config["bucket"], self.available +
                             (now - self.stamp) * self.config["restore_rate"])
        self.stamp = now

    def take(self, cost):
        self._leak()
        if self.available < cost:
            return False
        self.available -= cost
        return True

    def refund(self, points):
        self._leak()
        self.available = min(self.config["bucket"], self.available + points)

    def drain_to(self, level):
        self._leak()
        self.available = max(0.0, min(self.available, level))

    def cost_ext(self, requested, actual):
        self._leak()
        return {"cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": {
                "maximumAvailable": float(self.config["bucket"]),
                "currentlyAvailable": round(self.available, 1),
                "restoreRate": float(self.config["restore_rate"])}}}


def gql_error(message, code, extra=None):
    err = {"message": message, "extensions": {"code": code}}
    if extra:
        err["extensions"].update(extra)
    return err


class Doc:
    """What the adapter's GraphQL document asks, read by keywords."""

    ARG_RE = re.compile(r'(\w+)\s*:\s*(\$\w+|"(?:[^"\\]|\\.)*"|-?\d+|null|'
                        r'true|false|\[[^\]]*\])')

    def __init__(self, text, variables):
        self.text = text
        self.variables = variables

    def has(self, word):
        return re.search(r"\b" + re.escape(word) + r"\b", self.text) is not None

    def args(self, field):
        """Arguments of the first `field(...)`; None when absent."""
        m = re.search(r"\b" + re.escape(field) + r"\s*\(([^)]*)\)", self.text)
        if m is None:
            return None
        out = {}
        for name, raw in self.ARG_RE.findall(m.group(1)):
            if raw.startswith("$"):
                out[name] = self.variables.get(raw[1:])
            else:
                out[name] = json.loads(raw)
        return out

    def directive(self, name):
        m = re.search(r"@" + re.escape(name) + r"\s*\(([^)]*)\)", self.text)
        if m is None:
            return None
        out = {}
        for key, raw in self.ARG_RE.findall(m.group(1)):
            out[key] = (self.variables.get(raw[1:]) if raw.startswith("$")
                        else json.loads(raw))
        return out


def parse_search(q):
    """sku terms of a search string: sku:"quoted \\" value" or sku:bare."""
    terms = []
    for m in re.finditer(r'sku:(?:"((?:[^"\\]|\\.)*)"|([^\s"]+))', q or ""):
        if m.group(1) is not None:
            terms.append(re.sub(r"\\(.)", r"\1", m.group(1)))
        else:
            terms.append(m.group(2))
    return terms


def encode_cursor(num):
    return base64.b64encode(json.dumps({"last_id": num}).encode()).decode()


def decode_cursor(cur):
    try:
        return int(json.loads(base64.b64decode(cur))["last_id"])
    except (ValueError, KeyError, TypeError):
        return None


class ShopifyHandler(simcore.SimHandler):

    def _control(self, method, path, raw):
        if path == "/_sim/config" and method == "POST":
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                return self._send(400, {}, {"error": "bad JSON"})
            store = self.server.store
            with store.lock:
                for k in DEFAULTS:
                    if k in body:
                        store.config[k] = body[k]
                store.available = min(store.available, store.config["bucket"])
                return self._send(200, {}, {"ok": True,
                                            "config": store.config})
        return super()._control(method, path, raw)

    # Faults: the throttle answer drains the bucket for real --------------
    def _fault(self, f, method, path, query, raw):
        if f.mode != "throttle":
            return super()._fault(f, method, path, query, raw)
        store = self.server.store
        try:
            body = json.loads(raw)
            doc = Doc(body.get("query") or "", body.get("variables") or {})
            requested = self._requested_cost(doc)
        except (ValueError, AttributeError, TypeError):
            requested = MUTATION_COST
        with store.lock:
            rate = store.config["restore_rate"]
            store.drain_to(max(0.0, requested - float(f.retry_after) * rate))
            out = self._throttled_body(requested)
        return self._send(200, {}, out, ctype=JSON_CT)

    def throttled(self, fault):
        with self.server.store.lock:
            return 200, {"Content-Type": JSON_CT}, \
                self._throttled_body(MUTATION_COST)

    def _throttled_body(self, requested):
        return {"errors": [gql_error(
                    "Throttled", "THROTTLED",
                    {"documentation":
                     "https://shopify.dev/api/usage/rate-limits"})],
                "extensions": self.server.store.cost_ext(requested, None)}

    def auth_failed(self):
        return 401, {"Content-Type": JSON_CT}, {
            "errors": "[API] Invalid API key or access token "
                      "(unrecognized login or wrong password)"}

    def _auth_ok(self):
        token = self.headers.get("X-Shopify-Access-Token") or ""
        want = os.environ.get("SIM_SHOPIFY_TOKEN")
        if want is not None:
            return token == want
        return token.startswith("shpat_")

    # Dispatch ------------------------------------------------------------
    def api(self, method, path, query, body):
        m = PATH_RE.match(path)
        if m is None:
            return 404, {"Content-Type": JSON_CT}, {"errors": "Not Found"}
        if not self._auth_ok():
            return self.auth_failed()
        if method != "POST":
            return 405, {"Content-Type": JSON_CT}, {"errors": "Not Found"}
        ctype = (self.headers.get("Content-Type") or "").split(";")[0]
        if ctype.strip().lower() != "application/json":
            return 400, {"Content-Type": JSON_CT}, {
                "errors": "Unsupported Content-Type"}
        hdrs = {"Content-Type": JSON_CT, "X-Shopify-API-Version": m.group(1)}
        if isinstance(body, ValueError) or not isinstance(body, dict) or \
                not isinstance(body.get("query"), str):
            return 400, hdrs, {"errors": {"query": "Required parameter "
                                          "missing or invalid"}}
        variables = body.get("variables") or {}
        if not isinstance(variables, dict):
            return 200, hdrs, {"errors": [gql_error(
                "Variables must be an object", "BAD_REQUEST")]}
        doc = Doc(body["query"], variables)
        return 200, hdrs, self._execute(doc)

    def _requested_cost(self, doc):
        if doc.has("mutation"):
            return MUTATION_COST
        if doc.has("inventoryItems"):
            args = doc.args("inventoryItems") or {}
            first = args.get("first")
            first = first if isinstance(first, int) else 0
            return 2 + first * self._node_cost(doc)
        return 1

    @staticmethod
    def _node_cost(doc):
        return 1 + sum(1 for w in ("variant", "inventoryLevel", "quantities")
                       if doc.has(w))

    def _execute(self, doc):
        store = self.server.store
        requested = self._requested_cost(doc)
        if requested > MAX_QUERY_COST:
            return {"errors": [gql_error(
                "Query cost is %d, which exceeds the single query max cost "
                "limit (%d)." % (requested, MAX_QUERY_COST),
                "MAX_COST_EXCEEDED",
                {"cost": requested, "maxCost": MAX_QUERY_COST})]}
        if not store.take(requested):
            return self._throttled_body(requested)

        if doc.has("mutation") and doc.has("inventorySetQuantities"):
            out, actual = self._set_quantities(doc)
        elif doc.has("inventoryItems"):
            out, actual = self._inventory_items(doc)
        elif doc.has("location"):
            out = {"data": {"location": {"id": PRIMARY,
                                         "name": LOCATIONS[PRIMARY]}}}
            actual = 1
        else:
            out, actual = {"errors": [gql_error(
                "Field is not supported by this simulator",
                "undefinedField")]}, 0
        store.refund(requested - actual)
        out["extensions"] = store.cost_ext(requested, actual)
        return out

    # inventoryItems -----------------------------------------------------
    def _inventory_items(self, doc):
        store = self.server.store
        args = doc.args("inventoryItems") or {}
        first = args.get("first")
        if not isinstance(first, int) or first < 1:
            return {"errors": [gql_error(
                "you must provide one of first or last", "BAD_REQUEST")]}, 0
        if first > 250:
            return {"errors": [gql_error(
                "The first argument cannot exceed 250.", "BAD_REQUEST")]}, 0
        after = args.get("after")
        last_num = 0
        if after is not None:
            last_num = decode_cursor(after)
            if last_num is None:
                return {"errors": [gql_error("Invalid cursor.",
                                             "BAD_REQUEST")]}, 0
        terms = [t.lower() for t in parse_search(args.get("query"))]
        level_args = doc.args("inventoryLevel") or {}
        location = level_args.get("locationId", PRIMARY)

        matched = [it for it in store.items if it.num > last_num and
                   (not terms or (it.sku or "").lower() in terms)]
        page = matched[:first]
        nodes = [self._node(it, location) for it in page]
        more = len(matched) > first
        info = {"hasNextPage": more,
                "endCursor": encode_cursor(page[-1].num) if page else None}
        actual = 2 + len(page) * self._node_cost(doc)
        return {"data": {"inventoryItems": {"nodes": nodes,
                                            "pageInfo": info}}}, actual

    @staticmethod
    def _node(it, location):
        level = None
        if it.stocked and location == PRIMARY:
            level = {"quantities": [{"name": "available",
                                     "quantity": it.qty}]}
        return {"id": it.gid(), "sku": it.sku, "tracked": it.tracked,
                "variant": {"id": VARIANT_GID + str(it.num),
                            "displayName": it.name},
                "inventoryLevel": level}

    # inventorySetQuantities ---------------------------------------------
    def _set_quantities(self, doc):
        store = self.server.store
        key = (doc.directive("idempotent") or {}).get("key")
        if not isinstance(key, str) or not key:
            return {"errors": [gql_error(
                "The @idempotent directive with a key is required for this "
                "mutation.", "BAD_REQUEST")]}, 0
        inp = (doc.args("inventorySetQuantities") or {}).get("input")
        if not isinstance(inp, dict):
            return {"errors": [gql_error(
                "Variable $input of type InventorySetQuantitiesInput! was "
                "provided invalid value", "INVALID_VARIABLE")]}, 0
        quantities = inp.get("quantities")
        if not isinstance(quantities, list):
            return {"errors": [gql_error(
                "Variable $input of type InventorySetQuantitiesInput! was "
                "provided invalid value for quantities (Expected value to "
                "not be null)", "INVALID_VARIABLE")]}, 0
        limit = int(store.config["max_input"])
        if len(quantities) > limit:
            return {"errors": [gql_error(
                "The input array size of %d is greater than the maximum "
                "allowed of %d." % (len(quantities), limit),
                "MAX_INPUT_SIZE_EXCEEDED",
                {"path": ["inventorySetQuantities", "input", "quantities"]})
            ]}, 0
        for i, q in enumerate(quantities):
            bad = self._shape_problem(q)
            if bad:
                return {"errors": [gql_error(
                    "Variable $input of type InventorySetQuantitiesInput! "
                    "was provided invalid value for quantities.%d.%s" %
                    (i, bad), "INVALID_VARIABLE")]}, 0

        canon = json.dumps(inp, sort_keys=True)
        seen = store.idempotency.get(key)
        if seen is not None:
            if seen[0] != canon:
                payload = {"inventoryAdjustmentGroup": None, "userErrors": [{
                    "code": "IDEMPOTENCY_KEY_PARAMETER_MISMATCH",
                    "field": None,
                    "message": "The idempotency key was already used with "
                               "different parameters."}]}
                return {"data": {"inventorySetQuantities": payload}}, 10
            return {"data": {"inventorySetQuantities": seen[1]}}, 10

        payload = self._apply(inp, quantities)
        store.idempotency[key] = (canon, payload)
        return {"data": {"inventorySetQuantities": payload}}, 10

    @staticmethod
    def _shape_problem(q):
        if not isinstance(q, dict):
            return "(Expected an object)"
        for k in ("inventoryItemId", "locationId", "quantity"):
            if q.get(k) is None:
                return k + " (Expected value to not be null)"
        if not isinstance(q["quantity"], int):
            return "quantity (Could not coerce value to Int)"
        # 2026-04: the key must be there, null allowed.
        if "changeFromQuantity" not in q:
            return "changeFromQuantity (Expected value to be present)"
        if "compareQuantity" in q:
            return "compareQuantity (Field is not defined on " \
                   "InventoryQuantityInput)"
        cf = q["changeFromQuantity"]
        if cf is not None and not isinstance(cf, int):
            return "changeFromQuantity (Could not coerce value to Int)"
        return None

    def _apply(self, inp, quantities):
        store = self.server.store
        errors = []

        def refuse(code, field, message, i=None):
            path = ["input"] + field if i is None else \
                ["input", "quantities", str(i)] + field
            errors.append({"code": code, "field": path, "message": message})

        if inp.get("name") not in ("available", "on_hand"):
            refuse("INVALID_NAME", ["name"], "The quantity name must be "
                   "either 'available' or 'on_hand'.")
        if inp.get("reason") not in REASONS:
            refuse("INVALID_REASON", ["reason"], "The specified reason is "
                   "invalid.")
        pairs = set()
        plan = []
        for i, q in enumerate(quantities):
            it = store.by_gid.get(q["inventoryItemId"])
            loc = q["locationId"]
            pair = (q["inventoryItemId"], loc)
            if pair in pairs:
                refuse("NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR",
                       ["inventoryItemId"], "The combination of "
                       "inventoryItemId and locationId must be unique.", i)
                continue
            pairs.add(pair)
            if it is None:
                refuse("INVALID_INVENTORY_ITEM", ["inventoryItemId"],
                       "The specified inventory item could not be found.", i)
                continue
            if loc not in LOCATIONS:
                refuse("INVALID_LOCATION", ["locationId"],
                       "The specified location could not be found.", i)
                continue
            if not it.stocked or loc != PRIMARY:
                refuse("ITEM_NOT_STOCKED_AT_LOCATION", ["inventoryItemId"],
                       "The specified inventory item is not stocked at the "
                       "location.", i)
                continue
            injected = self.item_error(it.sku) if it.sku else None
            if injected is not None:
                refuse(injected[0], ["inventoryItemId"], injected[1], i)
                continue
            qty = q["quantity"]
            if qty > MAX_QTY:
                refuse("INVALID_QUANTITY_TOO_HIGH", ["quantity"],
                       "The quantity can't be higher than 1,000,000,000.", i)
                continue
            if qty < -MAX_QTY:
                refuse("INVALID_QUANTITY_TOO_LOW", ["quantity"],
                       "The quantity can't be lower than -1,000,000,000.", i)
                continue
            cf = q["changeFromQuantity"]
            if cf is not None and cf != it.qty:
                refuse("CHANGE_FROM_QUANTITY_STALE", ["changeFromQuantity"],
                       "The specified changeFromQuantity does not match the "
                       "current quantity.", i)
                continue
            plan.append((it, qty))

        if errors:
            return {"inventoryAdjustmentGroup": None, "userErrors": errors}
        changes = []
        for it, qty in plan:
            before = it.qty if it.qty is not None else 0
            it.qty = qty
            changes.append({"name": inp["name"], "delta": qty - before,
                            "quantityAfterChange": None})
        return {"inventoryAdjustmentGroup": {
                    "reason": inp["reason"],
                    "referenceDocumentUri": inp.get("referenceDocumentUri"),
                    "changes": changes},
                "userErrors": []}


def main():
    simcore.serve(ShopifyHandler, ShopifyStore(),
                  "Shopify GraphQL Admin API simulator")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""BigCommerce store simulator: the REST v3 Inventory API subset the
adapter uses, plus the Catalog products read it needs for tracking modes.

Served under /stores/<any hash>/v3/:
  GET  inventory/items              sku:in, variant_id:in, product_id:in,
                                    location_id:in, page, limit (<= 1000)
  PUT  inventory/adjustments/absolute   {"reason", "items": [...]} <= 2000
  POST inventory/adjustments/relative   same shape, signed deltas
  GET  inventory/locations          the locations
  GET  catalog/products             id:in, include_fields, page, limit (<= 250)

Behaviour kept from the platform (see ../../shared/platforms.md section 3):
X-Auth-Token auth; X-Rate-Limit-* headers on every answer with a real
fixed window (quota per window), 429 when a request arrives with the
window spent; writes answer 200 {"transaction_id"} and are applied after an
optional delay (the asynchronous acknowledgement); a bad item rejects the
whole adjustment with 422 application/problem+json whose title names the
item ("[Item with variant_id 106 is tracked by product, please update stock
by product id]"); product-tracked items written by variant id, and relative
adjustments before any absolute one, are refused as the docs describe.
Simulator choices where the docs say nothing: unknown items, untracked
products and unknown locations get a 422 naming them; the 422 titles for
those are our own words.

Seed items (common to every simulator): {"sku", "qty" (int or null),
"name", "tracked" (default true)} plus optional extras: "product_id" and
"variant_id" (items sharing a product_id become variants of one product),
"tracking" ("product" | "variant" | "none"; default "product" for a
product with one variant, "variant" once it has several), "locations"
({"2": 5}: levels at other locations), "safety_stock".

Extra controls (beyond simcore's):
  GET/POST /_sim/ratelimit {"quota": N, "window_ms": M}  window settings;
           GET also returns "early": requests that arrived while the window
           was spent (a client that honours the headers keeps it 0)
  POST /_sim/async {"apply_delay_ms": M}  delay before a write is applied
  POST /_sim/anonymous {"on": true}       refused adjustments name no item
                                          (the client must isolate them)
  GET  /_sim/transactions                 every accepted write
Environment: BC_SIM_QUOTA (150), BC_SIM_WINDOW_MS (30000),
BC_SIM_APPLY_DELAY_MS (0), BC_SIM_TOKEN (any non-empty token if unset).
"""

import json
import os
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simcore  # noqa: E402

API_PREFIX = "/v3/"
MAX_ITEMS_PAGE = 1000
MAX_ADJUST_ITEMS = 2000
MAX_CATALOG_PAGE = 250
MAX_LEVEL = 2147483647
DEFAULT_LOCATION = 1
PROBLEM = "application/problem+json"
ERR_TYPE = "https://developer.bigcommerce.com/docs/start/about/status-codes"


def env_int(name, default):
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


class RateWindow:
    """A fixed window per store: `quota` requests, refreshed `window_ms`
    after the first request of the window."""

    def __init__(self):
        self.configure(env_int("BC_SIM_QUOTA", 150),
                       env_int("BC_SIM_WINDOW_MS", 30000))

    def configure(self, quota, window_ms):
        self.quota = max(1, int(quota))
        self.window_ms = max(1, int(window_ms))
        self.start = None
        self.used = 0
        self.early = 0

    def _roll(self, now):
        if self.start is None or now >= self.start + self.window_ms / 1000.0:
            self.start = now
            self.used = 0

    def take(self):
        """Counts one request; False when the window was already spent."""
        now = time.time()
        self._roll(now)
        if self.used >= self.quota:
            self.early += 1
            return False
        self.used += 1
        return True

    def headers(self):
        now = time.time()
        self._roll(now)
        reset = self.start + self.window_ms / 1000.0 - now
        return {
            "X-Rate-Limit-Time-Window-Ms": self.window_ms,
            "X-Rate-Limit-Time-Reset-Ms": max(0, int(reset * 1000 + 0.999)),
            "X-Rate-Limit-Requests-Quota": self.quota,
            "X-Rate-Limit-Requests-Left": max(0, self.quota - self.used),
        }


class Store:
    def __init__(self):
        self.lock = threading.RLock()
        self.reset()

    def reset(self):
        with self.lock:
            self.products = {}   # id -> {"id","name","tracking","explicit"}
            self.variants = {}   # id -> variant dict, see seed()
            self.by_sku = {}
            self.locations = {DEFAULT_LOCATION: "DEFAULT"}
            self.next_pid = 100
            self.next_vid = 1000
            self.rate = RateWindow()
            self.apply_delay_ms = env_int("BC_SIM_APPLY_DELAY_MS", 0)
            self.transactions = []
            self.anonymous = False

    # simcore contract ---------------------------------------------------
    def seed(self, items):
        n = 0
        for it in items:
            self._seed_one(it)
            n += 1
        return n

    def _seed_one(self, it):
        pid = it.get("product_id")
        if pid is None:
            pid = self.next_pid
        pid = int(pid)
        self.next_pid = max(self.next_pid, pid) + 1
        vid = it.get("variant_id")
        if vid is None:
            vid = self.next_vid
        vid = int(vid)
        self.next_vid = max(self.next_vid, vid) + 1

        prod = self.products.get(pid)
        if prod is None:
            prod = {"id": pid, "name": it.get("name", ""),
                    "tracking": "product", "explicit": False, "variants": []}
            self.products[pid] = prod
        prod["variants"].append(vid)
        if "tracking" in it:
            prod["tracking"] = it["tracking"]
            prod["explicit"] = True
        elif not it.get("tracked", True):
            prod["tracking"] = "none"
            prod["explicit"] = True
        elif not prod["explicit"] and len(prod["variants"]) > 1:
            prod["tracking"] = "variant"

        levels = {}
        if it.get("qty") is not None:
            levels[DEFAULT_LOCATION] = int(it["qty"])
        for loc, q in (it.get("locations") or {}).items():
            self.locations.setdefault(int(loc), "LOC-%s" % loc)
            if q is not None:
                levels[int(loc)] = int(q)
        v = {"id": vid, "product_id": pid, "sku": it.get("sku"),
             "name": it.get("name", ""), "levels": levels,
             "safety": int(it.get("safety_stock", 0))}
        self.variants[vid] = v
        if v["sku"]:
            self.by_sku[v["sku"]] = vid

    def state(self):
        out = []
        for v in self.variants.values():
            p = self.products[v["product_id"]]
            out.append({
                "sku": v["sku"], "name": v["name"],
                "qty": v["levels"].get(DEFAULT_LOCATION),
                "tracked": p["tracking"] != "none",
                "tracking": p["tracking"],
                "product_id": p["id"], "variant_id": v["id"],
                "locations": {str(k): q for k, q in v["levels"].items()},
            })
        return out

    def get_qty(self, sku):
        vid = self.by_sku.get(sku)
        if vid is None:
            return None
        return self.variants[vid]["levels"].get(DEFAULT_LOCATION)

    def set_qty(self, sku, qty):
        vid = self.by_sku.get(sku)
        if vid is None:
            return False
        levels = self.variants[vid]["levels"]
        if qty is None:
            levels.pop(DEFAULT_LOCATION, None)
        else:
            levels[DEFAULT_LOCATION] = int(qty)
        return True


def problem(status, title, errors=None):
    return status, {"Content-Type": PROBLEM}, {
        "status": status, "title": title, "type": ERR_TYPE,
        "errors": errors or {}}


def id_list(query, name):
    """Comma-separated filter values, or None when the filter is absent."""
    if name not in query:
        return None
    out = []
    for v in query[name]:
        out.extend(x for x in v.split(",") if x != "")
    return out


def paging(query, max_limit, default=50):
    try:
        page = int(query.get("page", ["1"])[0])
        limit = int(query.get("limit", [str(default)])[0])
    except ValueError:
        return None
    if page < 1 or limit < 1 or limit > max_limit:
        return None
    return page, limit


def page_meta(total, page, limit, count):
    pages = (total + limit - 1) // limit if total else 0
    links = {"current": "?page=%d&limit=%d" % (page, limit)}
    if page > 1:
        links["previous"] = "?page=%d&limit=%d" % (page - 1, limit)
    if page < pages:
        links["next"] = "?page=%d&limit=%d" % (page + 1, limit)
    return {"pagination": {"total": total, "count": count, "per_page": limit,
                           "current_page": page, "total_pages": pages,
                           "links": links}}


class Handler(simcore.SimHandler):
    def store(self):
        return self.server.store

    # Control surface additions ------------------------------------------
    def _control(self, method, path, raw):
        name = path[len("/_sim/"):]
        st = self.store()
        if name == "ratelimit":
            with st.lock:
                if method == "POST":
                    body = json.loads(raw) if raw else {}
                    st.rate.configure(body.get("quota", st.rate.quota),
                                      body.get("window_ms",
                                               st.rate.window_ms))
                r = st.rate
                return self._send(200, {}, {
                    "quota": r.quota, "window_ms": r.window_ms,
                    "used": r.used, "early": r.early})
        if name == "async" and method == "POST":
            body = json.loads(raw) if raw else {}
            with st.lock:
                st.apply_delay_ms = int(body.get("apply_delay_ms", 0))
            return self._send(200, {}, {"ok": True})
        if name == "anonymous" and method == "POST":
            body = json.loads(raw) if raw else {}
            with st.lock:
                st.anonymous = bool(body.get("on", True))
            return self._send(200, {}, {"ok": True})
        if name == "transactions" and method == "GET":
            with st.lock:
                return self._send(200, {}, {"transactions":
                                            list(st.transactions)})
        return super()._control(method, path, raw)

    # Platform hooks -----------------------------------------------------
    def throttled(self, fault):
        st = self.store()
        with st.lock:
            h = st.rate.headers()
        h["X-Rate-Limit-Requests-Left"] = 0
        h["X-Rate-Limit-Time-Reset-Ms"] = int(float(fault.retry_after) * 1000)
        return 429, dict(h, **{"Content-Type": PROBLEM}), {
            "status": 429, "title": "Too many requests", "type": ERR_TYPE}

    def auth_failed(self):
        return problem(401, "You are not authorized to access this resource")

    def api(self, method, path, query, body):
        st = self.store()
        if not st.rate.take():
            status, headers, out = problem(
                429, "Too many requests: rate limit window exhausted")
        else:
            status, headers, out = self._route(method, path, query, body)
        return status, dict(headers, **st.rate.headers()), out

    def _route(self, method, path, query, body):
        token = self.headers.get("X-Auth-Token")
        want = os.environ.get("BC_SIM_TOKEN")
        if not token or (want and token != want):
            return self.auth_failed()
        parts = path.split("/")
        # /stores/<hash>/v3/<resource...>
        if len(parts) < 5 or parts[1] != "stores" or parts[3] != "v3":
            return problem(404, "Not found")
        res = "/".join(parts[4:])
        if isinstance(body, ValueError):
            return problem(400, "Input is invalid: the body is not JSON")
        if res == "inventory/items" and method == "GET":
            return self.list_items(query)
        if res == "inventory/adjustments/absolute" and method == "PUT":
            return self.adjust(body, relative=False)
        if res == "inventory/adjustments/relative" and method == "POST":
            return self.adjust(body, relative=True)
        if res == "inventory/locations" and method == "GET":
            return self.list_locations()
        if res == "catalog/products" and method == "GET":
            return self.list_products(query)
        return problem(404, "The requested resource was not found")

    # Reads ----------------------------------------------------------------
    def list_items(self, query):
        st = self.store()
        pg = paging(query, MAX_ITEMS_PAGE)
        if pg is None:
            return problem(422, "Invalid paging: limit must be 1 to %d"
                           % MAX_ITEMS_PAGE)
        page, limit = pg
        skus = id_list(query, "sku:in")
        vids = id_list(query, "variant_id:in")
        pids = id_list(query, "product_id:in")
        locs = id_list(query, "location_id:in")
        try:
            vids = None if vids is None else {int(x) for x in vids}
            pids = None if pids is None else {int(x) for x in pids}
            locs = None if locs is None else {int(x) for x in locs}
        except ValueError:
            return problem(422, "Invalid filter: ids must be integers")
        skus = None if skus is None else set(skus)

        rows = []
        for v in sorted(st.variants.values(), key=lambda v: v["id"]):
            if skus is not None and v["sku"] not in skus:
                continue
            if vids is not None and v["id"] not in vids:
                continue
            if pids is not None and v["product_id"] not in pids:
                continue
            rows.append(v)
        chunk = rows[(page - 1) * limit:page * limit]
        data = [self.item_json(v, locs) for v in chunk]
        return 200, {}, {"data": data,
                         "meta": page_meta(len(rows), page, limit,
                                           len(data))}

    def item_json(self, v, locs):
        st = self.store()
        out = []
        for loc_id, code in sorted(st.locations.items()):
            if locs is not None and loc_id not in locs:
                continue
            if loc_id not in v["levels"]:
                # Never adjusted there: no stock record at this location.
                continue
            onhand = v["levels"][loc_id]
            out.append({
                "location_id": loc_id, "location_code": code,
                "location_name": "Location %d" % loc_id,
                "available_to_sell": max(0, onhand - v["safety"]),
                "total_inventory_onhand": onhand,
                "location_enabled": True,
                "settings": {"safety_stock": v["safety"],
                             "is_in_stock": True, "warning_level": 0,
                             "bin_picking_number": ""}})
        return {"identity": {"sku": v["sku"], "variant_id": v["id"],
                             "product_id": v["product_id"], "sku_id": None},
                "locations": out}

    def list_locations(self):
        st = self.store()
        data = [{"id": i, "code": c, "label": "Location %d" % i,
                 "enabled": True, "is_default": i == DEFAULT_LOCATION}
                for i, c in sorted(st.locations.items())]
        return 200, {}, {"data": data,
                         "meta": page_meta(len(data), 1, 50, len(data))}

    def list_products(self, query):
        st = self.store()
        pg = paging(query, MAX_CATALOG_PAGE)
        if pg is None:
            return problem(422, "Invalid paging: limit must be 1 to %d"
                           % MAX_CATALOG_PAGE)
        page, limit = pg
        ids = id_list(query, "id:in")
        try:
            ids = None if ids is None else {int(x) for x in ids}
        except ValueError:
            return problem(422, "Invalid filter: id:in must be integers")
        fields = id_list(query, "include_fields")
        rows = [p for _, p in sorted(st.products.items())
                if ids is None or p["id"] in ids]
        chunk = rows[(page - 1) * limit:page * limit]
        data = []
        for p in chunk:
            full = {"id": p["id"], "name": p["name"],
                    "inventory_tracking": p["tracking"],
                    "inventory_level": sum(
                        st.variants[v]["levels"].get(DEFAULT_LOCATION, 0)
                        for v in p["variants"]),
                    "type": "physical"}
            if fields is not None:
                full = {k: x for k, x in full.items()
                        if k == "id" or k in fields}
            data.append(full)
        return 200, {}, {"data": data,
                         "meta": page_meta(len(rows), page, limit,
                                           len(data))}

    # Writes ---------------------------------------------------------------
    def resolve(self, item):
        """(variant, identity text, error title or None)."""
        st = self.store()
        if "variant_id" in item:
            ident = "variant_id %s" % item["variant_id"]
            v = st.variants.get(item["variant_id"])
            if v is None:
                return None, ident, "Item with %s was not found" % ident
            p = st.products[v["product_id"]]
            if p["tracking"] == "product":
                return None, ident, ("Item with %s is tracked by product, "
                                     "please update stock by product id"
                                     % ident)
        elif "product_id" in item:
            ident = "product_id %s" % item["product_id"]
            p = st.products.get(item["product_id"])
            if p is None:
                return None, ident, "Item with %s was not found" % ident
            if p["tracking"] == "variant":
                return None, ident, ("Item with %s is tracked by variant, "
                                     "please update stock by variant id"
                                     % ident)
            v = st.variants[p["variants"][0]]
        elif "sku" in item:
            ident = "sku %s" % item["sku"]
            vid = st.by_sku.get(item["sku"])
            if vid is None:
                return None, ident, "Item with %s was not found" % ident
            v = st.variants[vid]
        else:
            return None, "?", None
        p = st.products[v["product_id"]]
        if p["tracking"] == "none":
            return None, ident, ("Item with %s does not track inventory"
                                 % ident)
        return v, ident, None

    def adjust(self, body, relative):
        st = self.store()
        if not isinstance(body, dict) or not isinstance(body.get("items"),
                                                        list):
            return problem(422, "Payload contains invalid fields",
                           {"items": "items is required"})
        items = body["items"]
        if len(items) > MAX_ADJUST_ITEMS:
            return problem(422, "The request payload is too large. The "
                           "maximum items allowed in the array is %d"
                           % MAX_ADJUST_ITEMS)
        errors = {}
        titles = []
        plan = []
        for i, it in enumerate(items):
            bad = self.check_shape(it, relative)
            if bad:
                errors["items.%d" % i] = bad
                continue
            if it["location_id"] not in st.locations:
                why = "Location with id %d was not found" % it["location_id"]
                if why not in titles:
                    titles.append(why)
                continue
            v, ident, why = self.resolve(it)
            if why is None:
                custom = self.item_error(v["sku"])
                if custom is not None:
                    why = "Item with %s: %s" % (ident, custom[1])
            loc = it["location_id"]
            if why is None and relative:
                cur = v["levels"].get(loc)
                if cur is None:
                    why = ("Items with identity: [%s] requires absolute "
                           "adjustment before relative" % ident)
                elif cur + it["quantity"] < v["safety"]:
                    why = ("Item with %s would go below its safety stock"
                           % ident)
            if why is not None:
                titles.append(why)
                continue
            plan.append((v, loc, it["quantity"]))
        if errors:
            return problem(422, "Payload contains invalid fields", errors)
        if titles:
            # One bad item refuses the whole adjustment.
            if st.anonymous:
                return problem(422, "Adjustment refused: %d item(s) could "
                               "not be adjusted" % len(titles))
            return problem(422, "[" + ", ".join(titles) + "]")

        tid = str(uuid.uuid4())
        st.transactions.append({"transaction_id": tid, "t": time.time(),
                                "relative": relative, "items": len(plan)})

        def apply():
            with st.lock:
                for v, loc, q in plan:
                    base = v["levels"].get(loc, 0) if relative else 0
                    v["levels"][loc] = base + q

        if st.apply_delay_ms > 0:
            t = threading.Timer(st.apply_delay_ms / 1000.0, apply)
            t.daemon = True
            t.start()
        else:
            apply()
        return 200, {}, {"transaction_id": tid}

    @staticmethod
    def check_shape(it, relative):
        if not isinstance(it, dict):
            return "must be an object"
        if not isinstance(it.get("location_id"), int):
            return "location_id must be an integer"
        keys = [k for k in ("sku", "variant_id", "product_id") if k in it]
        if len(keys) != 1:
            return "exactly one of sku, variant_id, product_id is required"
        k = keys[0]
        if k == "sku" and not isinstance(it[k], str):
            return "sku must be a string"
        if k != "sku" and not isinstance(it[k], int):
            return "%s must be an integer" % k
        q = it.get("quantity")
        if not isinstance(q, int) or isinstance(q, bool):
            return "quantity must be an integer"
        if abs(q) > MAX_LEVEL:
            return "quantity must not exceed %d" % MAX_LEVEL
        if q < 0 and not relative:
            return "quantity must not be negative"
        return None


if __name__ == "__main__":
    simcore.serve(Handler, Store(), "BigCommerce inventory API simulator")

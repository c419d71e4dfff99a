#!/usr/bin/python3
"""WooCommerce REST API v3 (wc/v3) simulator for the stock-sync tests.

The subset the adapter uses, with the platform's own shapes:
  GET  /wp-json/wc/v3/products                  page, per_page (1..100),
       sku (comma list, plus the whole string), type, orderby, order,
       _fields (WordPress core: trims each object to those keys);
       X-WP-Total, X-WP-TotalPages and Link headers
  GET  /wp-json/wc/v3/products/<id>
  GET  /wp-json/wc/v3/products/<id>/variations  same paging, sku filter
  POST /wp-json/wc/v3/products/batch            {"update": [{id, ...}]}
  POST /wp-json/wc/v3/products/<id>/variations/batch
  PUT  /wp-json/wc/v3/products/<id>[/variations/<vid>]
Errors are {"code", "message", "data": {"status"}}. Auth is HTTP Basic with
consumer key and secret (see Auth below); a real store takes Basic only over
HTTPS, this one speaks plain HTTP on loopback and pretends otherwise.

Store behaviour kept on purpose, because real stores do it:
  * a variation without its own SKU shows its parent's SKU;
  * a variation whose stock is managed by its parent answers
    manage_stock "parent" and the parent's quantity;
  * stock_quantity is applied only to items that manage stock; on the
    others a write clears it, silently (answered 200 with null);
  * products?sku= does not find variations (wc/v3 queries products only),
    unless /_sim/config {"sku_finds_variations": true} says this store is
    one of the versions reported to find them;
  * external and grouped products never manage stock;
  * variations answer no "name" (the v3 controller sends none): the name
    lives in the parent's name and the variation's attribute options.

Seed items (common to every simulator):
  {"sku": str, "qty": int|null, "name": str, "tracked": bool = true}
plus extras: "parent" (the parent's SKU or name: the item becomes a
variation; a parent not seeded is created as a variable product with that
name and no SKU), "type" (simple, variable, external, grouped; variation is
implied by "parent"), "manage_stock": "parent" (a variation counted at its
parent), "virtual", "downloadable", "status", "attributes" (list of
{"name", "option"}), "inherit_sku": true (a variation showing its parent's
SKU; its own "sku" is ignored). An untracked item holds no quantity
(stock_quantity null), as on a real store.

/_sim/state lists every item that shows a SKU: {"sku", "qty", "tracked",
"name", "id", "type", "parent_id", "manage_stock"}; qty and tracked are the
item's own level (a variation counted at its parent has tracked false and
qty null; its parent carries the stock).
/_sim/set {"sku", "qty"} changes the level that SKU's item is counted at.
/_sim/config {"sku_finds_variations": bool, "batch_limit": int} changes
store settings (reset restores the defaults: false, 100).

Auth: with SIM_WOO_KEY and SIM_WOO_SECRET set, exactly that pair; otherwise
any key starting "ck_" with any secret starting "cs_". Query parameters
consumer_key/consumer_secret are accepted too, as WooCommerce does.

Run: python3 tests/sim/woocommerce_sim.py --port-file F
"""

import base64
import json
import os
import re
import socket
import sys
import threading
import time
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simcore  # noqa: E402

PREFIX = "/wp-json/wc/v3"
ORDERBY = ("date", "id", "include", "title", "slug", "price", "popularity",
           "rating", "menu_order", "modified")
TYPES = ("simple", "grouped", "external", "variable")
NO_STOCK_TYPES = ("external", "grouped")


def wc_error(status, code, message, headers=None):
    return status, headers or {}, {"code": code, "message": message,
                                   "data": {"status": status}}


class Item:
    def __init__(self, item_id, sku, name, kind):
        self.id = item_id
        self.sku = sku            # own SKU, "" when none
        self.name = name
        self.type = kind          # simple, variable, ..., variation
        self.parent = None        # Item, for variations
        self.children = []        # variations, for variable products
        self.manage_stock = False  # True, False or "parent" (variations)
        self.qty = None
        self.virtual = False
        self.downloadable = False
        self.status = "publish"
        self.attributes = []
        self.inherit_sku = False
        self.created = time.time()

    def shown_sku(self):
        # A variation with no SKU of its own shows its parent's.
        if self.type == "variation" and not self.sku and self.parent:
            return self.parent.sku
        return self.sku

    def counted_at(self):
        """The item whose stock this one shows, or None when unmanaged."""
        if self.manage_stock == "parent":
            return self.parent if self.parent.manage_stock is True else None
        return self if self.manage_stock is True else None

    def stock_status(self):
        at = self.counted_at()
        if at is None or at.qty is None:
            return "instock"
        return "instock" if at.qty > 0 else "outofstock"


class WooStore:
    def __init__(self):
        self.lock = threading.RLock()
        self.reset()

    def reset(self):
        with self.lock:
            self.items = {}      # id -> Item, insertion order = creation
            self.products = []   # items that are not variations, by id
            self.by_own_sku = {}  # lower-cased own SKU -> [Item]
            self.unnamed_parents = {}  # name -> product without a SKU
            self.next_id = 10
            self.sku_finds_variations = False
            self.batch_limit = 100

    def _new(self, sku, name, kind):
        item = Item(self.next_id, sku, name, kind)
        self.next_id += 1
        self.items[item.id] = item
        if kind != "variation":
            self.products.append(item)
            if not sku:
                self.unnamed_parents.setdefault(name, item)
        if sku:
            self.by_own_sku.setdefault(sku.lower(), []).append(item)
        return item

    def _find_parent(self, ref):
        for it in self.by_own_sku.get(ref.lower(), []):
            if it.type != "variation" and it.sku == ref:
                return it
        return self.unnamed_parents.get(ref)

    def _apply_stock(self, item, spec):
        tracked = bool(spec.get("tracked", True))
        ms = spec.get("manage_stock")
        if ms == "parent" and item.type == "variation":
            item.manage_stock = "parent"
        elif item.type in NO_STOCK_TYPES:
            item.manage_stock = False
        else:
            item.manage_stock = tracked if ms is None else bool(ms)
        qty = spec.get("qty")
        item.qty = int(qty) if (item.manage_stock is True and
                                qty is not None) else None

    def seed(self, specs):
        n = 0
        # Parents first, so a variation can name one seeded after it.
        ordered = ([s for s in specs if not s.get("parent")] +
                   [s for s in specs if s.get("parent")])
        for s in ordered:
            name = s.get("name") or s.get("sku") or "Item"
            if s.get("parent"):
                parent = self._find_parent(s["parent"])
                if parent is None:
                    parent = self._new("", s["parent"], "variable")
                if parent.type != "variable":
                    parent.type = "variable"
                item = self._new("" if s.get("inherit_sku")
                                 else (s.get("sku") or ""), name, "variation")
                item.parent = parent
                item.inherit_sku = bool(s.get("inherit_sku"))
                parent.children.append(item)
                item.attributes = s.get("attributes") or \
                    self._attributes_from_name(parent.name, name)
            else:
                kind = s.get("type", "simple")
                if kind not in TYPES:
                    kind = "simple"
                item = self._new(s.get("sku") or "", name, kind)
            self._apply_stock(item, s)
            item.virtual = bool(s.get("virtual", False))
            item.downloadable = bool(s.get("downloadable", False))
            item.status = s.get("status", "publish")
            n += 1
        return n

    @staticmethod
    def _attributes_from_name(parent_name, name):
        # "Hoodie - Red, No" under "Hoodie" -> options Red and No, the way
        # WooCommerce builds a variation's title from its attributes.
        head = parent_name + " - "
        if name.startswith(head):
            opts = name[len(head):].split(", ")
        else:
            opts = [name]
        return [{"id": 0, "name": "Option %d" % (i + 1), "option": o}
                for i, o in enumerate(opts)]

    def by_sku(self, sku):
        for it in self.items.values():
            if it.shown_sku() == sku:
                return it
        return None

    def state(self):
        out = []
        for it in self.items.values():
            sku = it.shown_sku()
            if not sku:
                continue
            out.append({
                "sku": sku, "qty": it.qty if it.manage_stock is True
                else None,
                "tracked": it.manage_stock is True, "name": it.name,
                "id": it.id, "type": it.type,
                "parent_id": it.parent.id if it.parent else 0,
                "manage_stock": it.manage_stock})
        return out

    def get_qty(self, sku):
        it = self.by_sku(sku)
        at = it.counted_at() if it else None
        return at.qty if at else None

    def set_qty(self, sku, qty):
        it = self.by_sku(sku)
        at = it.counted_at() if it else None
        if at is None:
            return False
        at.qty = None if qty is None else int(qty)
        return True


class WooHandler(simcore.SimHandler):
    server_version = "Apache"  # what most WordPress hosts say
    sys_version = ""

    def setup(self):
        super().setup()
        # Headers and body leave in two writes; without NODELAY, Nagle holds
        # the body until the client's delayed ACK (about 40 ms a request).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # Control ------------------------------------------------------------
    def _control(self, method, path, raw):
        if path == "/_sim/config" and method == "POST":
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                return self._send(400, {}, {"error": "bad JSON"})
            store = self.server.store
            with store.lock:
                if "sku_finds_variations" in body:
                    store.sku_finds_variations = bool(
                        body["sku_finds_variations"])
                if "batch_limit" in body:
                    store.batch_limit = int(body["batch_limit"])
            return self._send(200, {}, {"ok": True})
        return super()._control(method, path, raw)

    # Platform hooks -----------------------------------------------------
    def throttled(self, fault):
        # wc/v3 has no limiter; hosts and security plugins answer 429.
        return wc_error(429, "rest_too_many_requests",
                        "Too many requests.",
                        {"Retry-After": fault.retry_after})

    def auth_failed(self):
        return wc_error(401, "woocommerce_rest_authentication_error",
                        "Consumer key is invalid.")

    def _credentials(self, query):
        hdr = self.headers.get("Authorization") or ""
        if hdr.lower().startswith("basic "):
            try:
                pair = base64.b64decode(hdr[6:].strip()).decode()
            except (ValueError, UnicodeDecodeError):
                return "", ""
            key, _, secret = pair.partition(":")
            return key, secret
        key = (query.get("consumer_key") or [""])[0]
        secret = (query.get("consumer_secret") or [""])[0]
        return key, secret

    def _auth_ok(self, key, secret):
        want_key = os.environ.get("SIM_WOO_KEY")
        want_secret = os.environ.get("SIM_WOO_SECRET")
        if want_key is not None or want_secret is not None:
            return key == want_key and secret == want_secret
        return key.startswith("ck_") and secret.startswith("cs_")

    def api(self, method, path, query, body):
        if not path.startswith(PREFIX + "/"):
            if path in ("/wp-json", "/wp-json/"):
                return 200, {}, {"name": "Simulated store", "namespaces":
                                 ["wc/v3"]}
            return wc_error(404, "rest_no_route",
                            "No route was found matching the URL and "
                            "request method.")
        key, secret = self._credentials(query)
        if not key:
            return self._cannot(method, path)
        if not self._auth_ok(key, secret):
            if key.startswith("ck_"):
                return wc_error(401, "woocommerce_rest_authentication_error",
                                "Invalid signature - provided signature "
                                "does not match.")
            return wc_error(401, "woocommerce_rest_authentication_error",
                            "Consumer key is invalid.")
        if isinstance(body, ValueError):
            return wc_error(400, "rest_invalid_json",
                            "Invalid JSON body passed.")
        return self._route(method, path[len(PREFIX):], query, body)

    def _cannot(self, method, path):
        if path.endswith("/batch"):
            return wc_error(401, "woocommerce_rest_cannot_batch",
                            "Sorry, you are not allowed to batch "
                            "manipulate this resource.")
        if method == "GET":
            return wc_error(401, "woocommerce_rest_cannot_view",
                            "Sorry, you cannot list resources.")
        return wc_error(401, "woocommerce_rest_cannot_edit",
                        "Sorry, you are not allowed to edit this resource.")

    def _route(self, method, rest, query, body):
        store = self.server.store
        m = re.fullmatch(r"/products(?:/(\d+))?(?:/variations(?:/(\d+))?)?"
                         r"(/batch)?", rest)
        variations = "/variations" in rest
        if m is None:
            return self._no_route()
        pid = int(m.group(1)) if m.group(1) else None
        vid = int(m.group(2)) if m.group(2) else None
        batch = m.group(3) is not None
        if batch and (vid is not None or (variations and pid is None) or
                      (not variations and pid is not None)):
            return self._no_route()
        if variations and pid is None:
            return self._no_route()

        if batch:
            if method not in ("POST", "PUT", "PATCH"):
                return self._no_route()
            parent = None
            if variations:
                parent = store.items.get(pid)
                if parent is None or parent.type == "variation":
                    return wc_error(404, "woocommerce_rest_product_invalid_id",
                                    "Invalid ID.")
            return self._batch(body, parent)

        if method == "GET":
            if variations:
                parent = store.items.get(pid)
                if parent is None or parent.type == "variation":
                    return wc_error(404, "woocommerce_rest_product_invalid_id",
                                    "Invalid ID.")
                if vid is None:
                    return self._list(query, parent.children, rest)
                it = self._variation(parent, vid)
                if it is None:
                    return wc_error(
                        404, "woocommerce_rest_product_variation_invalid_id",
                        "Invalid ID.")
                return 200, {}, self._fields(query, self._json(it))
            if pid is None:
                return self._list(query, store.products, rest)
            it = store.items.get(pid)
            if it is None:
                return wc_error(404, "woocommerce_rest_product_invalid_id",
                                "Invalid ID.")
            return 200, {}, self._fields(query, self._json(it))

        if method in ("PUT", "POST", "PATCH") and pid is not None and \
                (vid is not None or not variations):
            if not isinstance(body, dict):
                return wc_error(400, "rest_invalid_json",
                                "Invalid JSON body passed.")
            parent = store.items.get(pid) if variations else None
            target = vid if variations else pid
            status, out = self._update(dict(body, id=target), parent)
            if "error" in out:
                return wc_error(out["error"]["data"]["status"],
                                out["error"]["code"], out["error"]["message"])
            return status, {}, out
        return self._no_route()

    def _no_route(self):
        return wc_error(404, "rest_no_route",
                        "No route was found matching the URL and request "
                        "method.")

    @staticmethod
    def _variation(parent, vid):
        for c in parent.children:
            if c.id == vid:
                return c
        return None

    # Listing ------------------------------------------------------------
    def _int_param(self, query, name, default, lo, hi):
        raw = (query.get(name) or [None])[0]
        if raw is None or raw == "":
            return default, None
        try:
            v = int(raw)
        except ValueError:
            return None, wc_error(400, "rest_invalid_param",
                                  "Invalid parameter(s): %s" % name)
        if v < lo or (hi is not None and v > hi):
            msg = ("%s must be between %d (inclusive) and %d (inclusive)"
                   % (name, lo, hi)) if hi is not None else \
                ("%s must be greater than or equal to %d" % (name, lo))
            status, hdrs, body = wc_error(400, "rest_invalid_param",
                                          "Invalid parameter(s): %s" % name)
            body["data"]["params"] = {name: msg}
            body["data"]["details"] = {name: {"code": "rest_out_of_bounds",
                                              "message": msg, "data": None}}
            return None, (status, hdrs, body)
        return v, None

    def _list(self, query, items, rest):
        store = self.server.store
        page, err = self._int_param(query, "page", 1, 1, None)
        if err:
            return err
        per_page, err = self._int_param(query, "per_page", 10, 1, 100)
        if err:
            return err
        orderby = (query.get("orderby") or ["date"])[0]
        order = (query.get("order") or ["desc"])[0]
        if orderby not in ORDERBY:
            return wc_error(400, "rest_invalid_param",
                            "Invalid parameter(s): orderby")
        if order not in ("asc", "desc"):
            return wc_error(400, "rest_invalid_param",
                            "Invalid parameter(s): order")

        sel = items
        kind = (query.get("type") or [""])[0]
        if kind:
            if kind not in TYPES:
                return wc_error(400, "rest_invalid_param",
                                "Invalid parameter(s): type")
            sel = [i for i in sel if i.type == kind]
        sku = (query.get("sku") or [""])[0]
        if sku:
            wanted = sku.split(",")
            # WooCommerce also matches the whole string, commas and all.
            if len(wanted) > 1:
                wanted.append(sku)
            # The filter reads each item's own SKU (an inherited one is not
            # stored on the variation); MySQL's default collation compares
            # case-insensitively.
            hits = {}
            for w in set(x.lower() for x in wanted):
                for i in store.by_own_sku.get(w, []):
                    hits[i.id] = i
            if "/variations" in rest:
                scope = set(id(i) for i in sel)
                sel = [i for i in hits.values() if id(i) in scope]
            elif store.sku_finds_variations:
                sel = list(hits.values())
            else:
                sel = [i for i in hits.values() if i.type != "variation"]
            if kind:
                sel = [i for i in sel if i.type == kind]
            sel.sort(key=lambda i: i.id)

        # Items are kept in id order, which is also creation (date) order.
        if orderby == "title":
            sel = sorted(sel, key=lambda i: (i.name, i.id))
        if order == "desc":
            sel = sel[::-1]

        total = len(sel)
        pages = (total + per_page - 1) // per_page
        chunk = sel[(page - 1) * per_page: page * per_page]
        headers = {"X-WP-Total": total, "X-WP-TotalPages": pages}
        links = self._links(rest, query, page, pages)
        if links:
            headers["Link"] = links
        return 200, headers, [self._fields(query, self._json(i))
                              for i in chunk]

    @staticmethod
    def _fields(query, obj):
        # WordPress core trims any answer to the _fields listed (top-level
        # names; "a.b" keeps a).
        raw = (query.get("_fields") or [""])[0]
        if not raw:
            return obj
        keep = set(f.strip().split(".")[0] for f in raw.split(","))
        return {k: v for k, v in obj.items() if k in keep}

    def _links(self, rest, query, page, pages):
        host = self.headers.get("Host") or "127.0.0.1"
        base = "http://%s%s%s" % (host, PREFIX, rest)

        def url(p):
            q = [(k, v[0]) for k, v in query.items()
                 if k not in ("page", "consumer_key", "consumer_secret")]
            q.append(("page", str(p)))
            return base + "?" + "&".join("%s=%s" % (quote(k, safe=""),
                                                    quote(v, safe=","))
                                         for k, v in q)
        out = []
        if page > 1 and page - 1 <= pages:
            out.append('<%s>; rel="prev"' % url(page - 1))
        if page < pages:
            out.append('<%s>; rel="next"' % url(page + 1))
        return ", ".join(out)

    def _json(self, it):
        at = it.counted_at()
        qty = at.qty if at is not None else None
        d = {
            "id": it.id,
            "date_created": time.strftime("%Y-%m-%dT%H:%M:%S",
                                          time.gmtime(it.created)),
            "status": it.status,
            "sku": it.shown_sku(),
            "price": "10.00",
            "regular_price": "10.00",
            "sale_price": "",
            "virtual": it.virtual,
            "downloadable": it.downloadable,
            "manage_stock": it.manage_stock,
            "stock_quantity": qty,
            "stock_status": it.stock_status(),
            "backorders": "no",
            "backorders_allowed": False,
            "backordered": False,
            "low_stock_amount": None,
            "attributes": it.attributes,
            "meta_data": [],
        }
        if it.type != "variation":
            d.update({
                "name": it.name,
                "slug": re.sub(r"[^a-z0-9]+", "-", it.name.lower()).strip(
                    "-"),
                "type": it.type,
                "parent_id": 0,
                "variations": [c.id for c in it.children],
            })
        elif self.server.store.sku_finds_variations:
            # Versions whose product list finds variations also say whose.
            d.update({"type": "variation", "parent_id": it.parent.id,
                      "name": it.name})
        return d

    # Writing ------------------------------------------------------------
    def _update(self, req, parent):
        """One update from a batch or a PUT: returns (status, object or
        error entry), the way WooCommerce's batch handler reports each."""
        store = self.server.store
        vid = req.get("id")
        code = ("woocommerce_rest_product_variation_invalid_id" if parent
                else "woocommerce_rest_product_invalid_id")
        if not isinstance(vid, int) or isinstance(vid, bool):
            return 400, self._error_entry(vid, 400, code, "Invalid ID.")
        it = self._variation(parent, vid) if parent else \
            store.items.get(vid)
        if it is None or (parent is None and it.type == "variation"):
            return 400, self._error_entry(vid, 400, code, "Invalid ID.")
        ie = self.item_error(it.shown_sku())
        if ie is not None:
            return 400, self._error_entry(vid, 400, ie[0], ie[1])
        if "stock_quantity" in req and req["stock_quantity"] is not None:
            q = req["stock_quantity"]
            if isinstance(q, bool) or not isinstance(q, (int, float)) or \
                    (isinstance(q, float) and not q.is_integer()):
                return 400, self._error_entry(vid, 400, "rest_invalid_param",
                                       "Invalid parameter(s): "
                                       "stock_quantity")
        if "manage_stock" in req:
            ms = req["manage_stock"]
            if it.type in NO_STOCK_TYPES:
                ms = False
            it.manage_stock = ("parent" if ms == "parent" and
                               it.type == "variation" else bool(ms))
        if it.manage_stock is True:
            if req.get("stock_quantity") is not None:
                it.qty = int(req["stock_quantity"])
            elif "inventory_delta" in req:
                it.qty = (it.qty or 0) + int(req["inventory_delta"])
        elif it.manage_stock is False:
            # Not managed: WooCommerce drops the quantity and clears it.
            it.qty = None
        return 200, self._json(it)

    @staticmethod
    def _error_entry(item_id, status, code, message):
        return {"id": item_id if isinstance(item_id, int) else 0,
                "error": {"code": code, "message": message,
                          "data": {"status": status}}}

    def _batch(self, body, parent):
        store = self.server.store
        if not isinstance(body, dict):
            return wc_error(400, "rest_invalid_json",
                            "Invalid JSON body passed.")
        n = sum(len(body.get(k) or []) for k in ("create", "update",
                                                  "delete"))
        if n > store.batch_limit:
            return wc_error(413, "woocommerce_rest_request_entity_too_large",
                            "Unable to accept more than %d items for this "
                            "request." % store.batch_limit)
        out = {}
        if body.get("create"):
            out["create"] = [self._error_entry(0, 400, "woocommerce_rest_cannot_"
                                        "create", "The simulator does not "
                                        "create items.")
                             for _ in body["create"]]
        if "update" in body:
            ups = body["update"]
            if not isinstance(ups, list):
                return wc_error(400, "rest_invalid_param",
                                "Invalid parameter(s): update")
            res = []
            for u in ups:
                if not isinstance(u, dict):
                    res.append(self._error_entry(0, 400, "rest_invalid_param",
                                          "Invalid parameter(s): update"))
                    continue
                res.append(self._update(u, parent)[1])
            out["update"] = res
        if body.get("delete"):
            out["delete"] = [self._error_entry(d if isinstance(d, int) else 0, 400,
                                        "woocommerce_rest_cannot_delete",
                                        "The simulator does not delete "
                                        "items.")
                             for d in body["delete"]]
        return 200, {}, out


def main():
    simcore.serve(WooHandler, WooStore(), "WooCommerce wc/v3 simulator")


if __name__ == "__main__":
    main()

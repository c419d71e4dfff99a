#!/usr/bin/python3
"""Magento 2 / Adobe Commerce REST simulator (MSI source items) for the
stock-sync tests.

The subset the adapter uses, with the platform's own shapes:
  GET  /rest[/<store>]/V1/inventory/source-items?searchCriteria...
       filter_groups (filters OR-ed inside a group, groups AND-ed) on sku,
       source_code, quantity, status with eq, neq, in, nin, like, gt, gteq,
       lt, lteq; sort_orders; page_size / current_page (camelCase spellings
       too); answers {"items", "search_criteria", "total_count"}
  POST /rest[/<store>]/V1/inventory/source-items  {"sourceItems": [...]}
       -> [] ; the whole batch is saved or none of it
  GET  /rest[/<store>]/V1/stockItems/<sku>   legacy stock item (manage_stock)
Errors are {"message": "... %1 ... %name ...", "parameters": [...] or {...}},
validation failures add "errors": [{"message", "parameters"}].

Store behaviour kept on purpose, because real stores do it:
  * SKU filters compare without case (MySQL's default collation), so
    sku=abc finds "ABC"; source_code compares exactly on read;
  * a page past the end answers the last page again (collections clamp the
    page number), so a client must stop on total_count;
  * quantities come back as floats (12.0);
  * a write for a SKU that is not in the catalog is answered 200 [] and,
    by the store's "unknown_sku" setting, ignored ("ignore", the default
    here), saved as an orphan source item ("create", as 2.3.5 was reported
    to do) or refused ("reject": "Could not save Source Item");
  * with Web API input limits on (the default here, off on a fresh real
    store): at most 20 items per list input, at most 300 per page, 20 per
    page when page_size is absent; with them off, no page_size means every
    item.

Seed items (common to every simulator):
  {"sku": str, "qty": int|null, "name": str, "tracked": bool = true}
plus extras: "source_code" (default "default"; a new code becomes a
source), "status" (0/1; default 1 when qty > 0), "in_catalog" (false: a
source item whose SKU has no product, an orphan). qty null: the product
exists but has no source item at that source. tracked false is the
product's manage_stock = No, visible only through stockItems/<sku>: MSI
source items carry no such flag, so the source item is listed as usual.

/_sim/state lists one row per product and source item: {"sku", "qty",
"tracked", "name", "source_code", "status", "in_catalog"}; qty is null for
a product without a source item.
/_sim/set {"sku", "qty"[, "source_code"]} changes a source quantity.
/_sim/config {"unknown_sku": "ignore"|"create"|"reject", "input_limits":
bool, "max_batch": int, "max_page": int, "default_page": int} changes
store settings; reset restores the defaults.

Auth: "Authorization: Bearer <token>"; with SIM_MAGENTO_TOKEN set exactly
that token, otherwise any non-empty one.

Run: python3 tests/sim/magento_sim.py --port-file F
"""

import json
import os
import re
import sys
from urllib.parse import unquote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simcore  # noqa: E402

ROUTE = re.compile(r"^/rest(?:/([A-Za-z0-9_]+))?/V1/(.+)$")
CRITERIA_KEY = re.compile(r"^searchCriteria((?:\[[^\]]*\])+)$")
FIELDS = ("sku", "source_code", "quantity", "status")
CAMEL = {"filterGroups": "filter_groups", "conditionType": "condition_type",
         "pageSize": "page_size", "currentPage": "current_page",
         "sortOrders": "sort_orders"}
DEFAULTS = {"unknown_sku": "ignore", "input_limits": True, "max_batch": 20,
            "max_page": 300, "default_page": 20}


def mg_error(status, message, parameters=None, errors=None, headers=None):
    body = {"message": message}
    if parameters is not None:
        body["parameters"] = parameters
    if errors:
        body["errors"] = errors
    return status, headers or {}, body


def _render(err):
    """A Magento message with its placeholders filled, as PHP renders a
    Phrase."""
    text = err["message"]
    params = err.get("parameters")
    if isinstance(params, dict):
        for k, v in params.items():
            text = text.replace("%" + k, str(v))
    elif isinstance(params, list):
        for i, v in reversed(list(enumerate(params))):
            text = text.replace("%%%d" % (i + 1), str(v))
    return text


class BadRequest(Exception):
    def __init__(self, message, parameters=None):
        super().__init__(message)
        self.message = message
        self.parameters = parameters


class MagentoStore:
    def __init__(self):
        import threading
        self.lock = threading.RLock()
        self.reset()

    def reset(self):
        with self.lock:
            self.products = {}      # sku -> {"name", "manage_stock", "id"}
            self.sources = {"default"}
            self.items = {}         # (sku, source_code) -> source item
            self.next_id = 1
            self.settings = dict(DEFAULTS)

    # Lookups -------------------------------------------------------------
    def product(self, sku):
        """The catalog compares SKUs without case, like the database."""
        p = self.products.get(sku)
        if p is not None:
            return sku, p
        low = sku.lower()
        for k, v in self.products.items():
            if k.lower() == low:
                return k, v
        return None, None

    def item(self, sku, source):
        it = self.items.get((sku, source))
        if it is not None:
            return it
        low = sku.lower()
        for (k, s), v in self.items.items():
            if s == source and k.lower() == low:
                return v
        return None

    def _put(self, sku, source, qty, status):
        it = self.item(sku, source)
        if it is None:
            it = {"id": self.next_id, "sku": sku, "source_code": source}
            self.next_id += 1
            self.items[(sku, source)] = it
        it["quantity"] = float(qty)
        it["status"] = int(status)
        return it

    # simcore hooks -------------------------------------------------------
    def seed(self, specs):
        n = 0
        for s in specs:
            sku = s["sku"]
            source = s.get("source_code", "default")
            self.sources.add(source)
            if s.get("in_catalog", True):
                if sku not in self.products:
                    self.products[sku] = {"id": len(self.products) + 1,
                                          "name": s.get("name", sku),
                                          "manage_stock": True}
                self.products[sku]["name"] = s.get("name", sku)
                self.products[sku]["manage_stock"] = bool(
                    s.get("tracked", True))
            qty = s.get("qty")
            if qty is not None:
                status = s.get("status", 1 if qty > 0 else 0)
                self._put(sku, source, qty, status)
            n += 1
        return n

    def state(self):
        out = []
        listed = set()
        for (sku, source), it in sorted(self.items.items(),
                                        key=lambda kv: kv[1]["id"]):
            p = self.products.get(sku)
            q = it["quantity"]
            out.append({"sku": sku, "qty": int(q) if q == int(q) else q,
                        "tracked": p["manage_stock"] if p else True,
                        "name": p["name"] if p else None,
                        "source_code": source, "status": it["status"],
                        "in_catalog": p is not None})
            listed.add(sku)
        for sku, p in self.products.items():
            if sku not in listed:
                out.append({"sku": sku, "qty": None,
                            "tracked": p["manage_stock"], "name": p["name"],
                            "source_code": None, "status": None,
                            "in_catalog": True})
        return out

    def _first_item(self, sku, source=None):
        cands = [it for (k, s), it in self.items.items()
                 if k == sku and (source is None or s == source)]
        cands.sort(key=lambda it: (it["source_code"] != "default", it["id"]))
        return cands[0] if cands else None

    def get_qty(self, sku):
        it = self._first_item(sku)
        return None if it is None else int(it["quantity"])

    def set_qty(self, sku, qty, source=None):
        it = self._first_item(sku, source)
        if it is None:
            if sku not in self.products:
                return False
            self._put(sku, source or "default", qty, 1 if qty > 0 else 0)
            return True
        it["quantity"] = float(qty)
        return True


class SearchCriteria:
    """searchCriteria[...] query parameters, parsed as Magento reads them."""

    def __init__(self, query):
        tree = {}
        for key, values in query.items():
            m = CRITERIA_KEY.match(key)
            if not m:
                continue
            parts = [CAMEL.get(p, p)
                     for p in re.findall(r"\[([^\]]*)\]", m.group(1))]
            node = tree
            for p in parts[:-1]:
                node = node.setdefault(p, {})
                if not isinstance(node, dict):
                    raise BadRequest("\"%1\" is not a valid search "
                                     "criteria key.", [key])
            node[parts[-1]] = values[-1]
        self.raw = tree
        self.groups = []
        for _, g in sorted(tree.get("filter_groups", {}).items(),
                           key=lambda kv: _index(kv[0])):
            filters = []
            for _, f in sorted(g.get("filters", {}).items(),
                               key=lambda kv: _index(kv[0])):
                field = f.get("field")
                if field not in FIELDS:
                    raise BadRequest("Invalid field \"%1\" in the search "
                                     "criteria.", [field or ""])
                filters.append((field, f.get("condition_type", "eq"),
                                f.get("value", "")))
            if filters:
                self.groups.append(filters)
        self.sorts = []
        for _, s in sorted(tree.get("sort_orders", {}).items(),
                           key=lambda kv: _index(kv[0])):
            if s.get("field") in FIELDS:
                self.sorts.append((s["field"],
                                   s.get("direction", "ASC").upper()))
        self.page_size = _opt_int(tree.get("page_size"), "pageSize")
        self.current_page = _opt_int(tree.get("current_page"),
                                     "currentPage") or 1

    def echo(self):
        groups = [{"filters": [{"field": f, "value": v, "condition_type": c}
                               for f, c, v in g]} for g in self.groups]
        out = {"filter_groups": groups}
        if self.sorts:
            out["sort_orders"] = [{"field": f, "direction": d}
                                  for f, d in self.sorts]
        if self.page_size is not None:
            out["page_size"] = self.page_size
        out["current_page"] = self.current_page
        return out


def _index(s):
    try:
        return int(s)
    except ValueError:
        return 0


def _opt_int(v, name):
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise BadRequest("\"%1\" must be a number.", [name])


def _cmp_value(field, item):
    v = item[field]
    return v.lower() if isinstance(v, str) else v


def _compile(field, cond, value):
    """One filter as a predicate on a source item, parsed once per request
    (an "in" list may hold hundreds of SKUs)."""
    if field in ("quantity", "status"):
        def conv(x):
            try:
                return float(x)
            except ValueError:
                raise BadRequest("\"%1\" is not a valid value for %2.",
                                 [x, field])
    elif field == "sku":
        def conv(x):
            return x.lower()
    else:
        def conv(x):
            return x

    def have(it):
        return conv(it[field]) if field == "sku" else it[field]

    if cond in ("in", "nin"):
        wanted = {conv(v) for v in value.split(",")}
        if cond == "in":
            return lambda it: have(it) in wanted
        return lambda it: have(it) not in wanted
    if cond in ("like", "nlike"):
        pat = re.compile("^" + re.escape(conv(value)).replace(
            "%", ".*").replace("_", ".") + "$", re.S)
        if cond == "like":
            return lambda it: pat.match(str(have(it))) is not None
        return lambda it: pat.match(str(have(it))) is None
    ops = {"eq": lambda a, b: a == b, "neq": lambda a, b: a != b,
           "gt": lambda a, b: a > b, "gteq": lambda a, b: a >= b,
           "lt": lambda a, b: a < b, "lteq": lambda a, b: a <= b}
    if cond not in ops:
        raise BadRequest("Invalid condition type \"%1\".", [cond])
    want = conv(value)
    op = ops[cond]
    return lambda it: op(have(it), want)


class MagentoHandler(simcore.SimHandler):
    server_version = "nginx"
    sys_version = ""

    # Control ------------------------------------------------------------
    def _control(self, method, path, raw):
        store = self.server.store
        if path == "/_sim/config" and method == "POST":
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                return self._send(400, {}, {"error": "bad JSON"})
            with store.lock:
                for k in DEFAULTS:
                    if k in body:
                        store.settings[k] = type(DEFAULTS[k])(body[k])
                settings = dict(store.settings)
            return self._send(200, {}, {"ok": True, "settings": settings})
        if path == "/_sim/set" and method == "POST":
            try:
                body = json.loads(raw) if raw else {}
                with store.lock:
                    ok = store.set_qty(body["sku"], body["qty"],
                                       body.get("source_code"))
            except (ValueError, KeyError):
                return self._send(400, {}, {"error": "need sku and qty"})
            return self._send(200 if ok else 404, {}, {"ok": ok})
        return super()._control(method, path, raw)

    # Platform hooks -----------------------------------------------------
    def throttled(self, fault):
        # Core Magento has no limiter on these routes; the CDN or WAF in
        # front of it answers 429.
        return mg_error(429, "Too many requests. Retry after %1 seconds.",
                        [fault.retry_after],
                        headers={"Retry-After": fault.retry_after})

    def auth_failed(self):
        # The ACL resources of magento/inventory's InventoryApi webapi.xml.
        resource = ("Magento_InventoryApi::stock_source_item_assign"
                    if self.command == "POST"
                    else "Magento_InventoryApi::source")
        return mg_error(401, "The consumer is not authorized to access "
                        "%resources.", {"resources": resource})

    def _auth_ok(self):
        hdr = self.headers.get("Authorization") or ""
        if not hdr.lower().startswith("bearer "):
            return False
        token = hdr[7:].strip()
        want = os.environ.get("SIM_MAGENTO_TOKEN")
        return token == want if want is not None else bool(token)

    def api(self, method, path, query, body):
        m = ROUTE.match(path)
        if not m:
            return mg_error(404, "Request does not match any route.")
        if not self._auth_ok():
            return self.auth_failed()
        rest = m.group(2)
        store = self.server.store
        try:
            if rest == "inventory/source-items" and method == "GET":
                return self._search(store, query)
            if rest == "inventory/source-items" and method == "POST":
                return self._save(store, body)
            if rest.startswith("stockItems/") and method == "GET":
                return self._stock_item(store, unquote(rest[11:]))
        except BadRequest as e:
            return mg_error(400, e.message, e.parameters)
        return mg_error(404, "Request does not match any route.")

    # Routes -------------------------------------------------------------
    def _search(self, store, query):
        sc = SearchCriteria(query)
        cfg = store.settings
        size = sc.page_size
        if cfg["input_limits"]:
            if size is None:
                size = cfg["default_page"]
            if size > cfg["max_page"]:
                raise BadRequest("The page size %1 is above the maximum of "
                                 "%2.", [size, cfg["max_page"]])
        groups = [[_compile(f, c, v) for f, c, v in g] for g in sc.groups]
        items = [it for it in sorted(store.items.values(),
                                     key=lambda it: it["id"])
                 if all(any(pred(it) for pred in g) for g in groups)]
        for field, direction in reversed(sc.sorts):
            items.sort(key=lambda it: _cmp_value(field, it),
                       reverse=direction == "DESC")
        total = len(items)
        if size:
            last = max(1, -(-total // size))
            page = min(max(sc.current_page, 1), last)
            items = items[(page - 1) * size:page * size]
        out = [{"sku": it["sku"], "source_code": it["source_code"],
                "quantity": it["quantity"], "status": it["status"]}
               for it in items]
        return 200, {}, {"items": out, "search_criteria": sc.echo(),
                         "total_count": total}

    def _save(self, store, body):
        if isinstance(body, ValueError):
            return mg_error(400, "Decoding error: the request body is not "
                            "valid JSON.")
        if not isinstance(body, dict) or not isinstance(
                body.get("sourceItems"), list):
            return mg_error(400, "\"%fieldName\" is required. Enter and "
                            "try again.", {"fieldName": "sourceItems"})
        batch = body["sourceItems"]
        cfg = store.settings
        if cfg["input_limits"] and len(batch) > cfg["max_batch"]:
            return mg_error(400, "The number of items in \"%1\" is %2, "
                            "above the limit of %3.",
                            ["sourceItems", len(batch), cfg["max_batch"]])
        if not batch:
            return mg_error(400, "Input data is empty")
        # Every item is validated before any is saved; the message names
        # the first failure only, and no item index.
        errors = []
        for it in batch:
            errors += self._validate(store, it)
        if errors:
            return mg_error(400, "Validation Failed: " + _render(errors[0]),
                            errors=errors)
        # All or nothing: one refused item refuses the batch, as Magento
        # saves source items in one statement.
        for it in batch:
            hit = self.item_error(it["sku"])
            if hit is not None:
                return mg_error(400, "Could not save Source Item: %1 (%2)",
                                [hit[1], hit[0]])
            if store.product(it["sku"])[0] is None and \
                    store.item(it["sku"], it["source_code"]) is None and \
                    cfg["unknown_sku"] == "reject":
                return mg_error(400, "Could not save Source Item")
        for it in batch:
            known = store.product(it["sku"])[0] is not None or \
                store.item(it["sku"], it["source_code"]) is not None
            if not known and cfg["unknown_sku"] == "ignore":
                continue
            store._put(it["sku"], it["source_code"], it["quantity"],
                       it["status"])
        return 200, {}, []

    @staticmethod
    def _validate(store, it):
        def err(msg, params):
            return [{"message": msg, "parameters": params}]
        if not isinstance(it, dict):
            return err("A source item must be an object.", [])
        sku = it.get("sku")
        if not isinstance(sku, str) or not sku:
            return err("\"%field\" can not be empty.", {"field": "sku"})
        if sku != sku.strip():
            return err("\"%field\" can not contain leading or trailing "
                       "spaces.", {"field": "sku"})
        src = it.get("source_code")
        if not isinstance(src, str) or not src:
            return err("\"%field\" can not be empty.",
                       {"field": "source_code"})
        if src not in store.sources:
            return err("Source \"%1\" does not exist.", [src])
        q = it.get("quantity")
        if isinstance(q, bool) or not isinstance(q, (int, float)):
            return err("\"%field\" should be numeric.",
                       {"field": "quantity"})
        if it.get("status") not in (0, 1):
            return err("\"%field\" should be 0 or 1.", {"field": "status"})
        return []

    def _stock_item(self, store, sku):
        real, p = store.product(sku)
        if p is None:
            return mg_error(404, "The Product with the \"%1\" SKU doesn't "
                            "exist.", [sku])
        it = store.item(real, "default")
        qty = it["quantity"] if it else 0.0
        return 200, {}, {"item_id": p["id"], "product_id": p["id"],
                         "stock_id": 1, "qty": qty,
                         "is_in_stock": bool(it and it["status"]),
                         "is_qty_decimal": False,
                         "use_config_manage_stock": False,
                         "manage_stock": p["manage_stock"]}


def main():
    simcore.serve(MagentoHandler, MagentoStore(),
                  "Magento 2 MSI source-items simulator")


if __name__ == "__main__":
    main()

"""Helpers for the integration tests (stdlib only; run with /usr/bin/python3).

Every helper talks to the local stack that `deploy/stack start` runs and
describes in $STOCKSYNC_STACK_DIR/env (default <repo>/.stack/env):

  env()                   os.environ overlaid with the stack's env file
  psql(sql, *params)      rows from the psql client; $1, $2... are params
  Sim("shopify")          a store simulator's /_sim/ control surface
  kafka_produce(...)      one message through kcat -P
  kafka_consume(...)      every message of a topic through kcat -C -e -J
  broker_control(cmd)     a command on the devbroker's control FIFO
  Worker(n) / Exporter(n) stocksync daemons from the build dir
  cli(*args)              runs `stocksync ...`: (rc, stdout, stderr)
  fresh_db()              a new empty stocksync database, migrated
  wait_for(pred, timeout) polls until pred() is truthy

Nothing here reaches beyond 127.0.0.1: URLs and brokers come from the env
file, and HTTP goes without any proxy settings.
"""

import atexit
import json
import os
import re
import shlex
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

# psql separators: unit separator between fields, NUL after every row (psql
# ends the last row with it too in -0 mode, and text values cannot hold
# NUL, so rows split without ambiguity). NULL prints as NULL_MARK.
_FIELD_SEP = "\x1f"
_NULL_MARK = "\x02NULL\x03"


class StackError(Exception):
    """The stack is not running or one of its parts misbehaved."""


class PsqlError(Exception):
    """psql exited non-zero; the message carries its stderr."""


# ------------------------------------------------------------------ env

def stack_dir():
    d = os.environ.get("STOCKSYNC_STACK_DIR") or os.path.join(ROOT, ".stack")
    return os.path.abspath(d)


def load_env(path=None):
    """Returns the stack's env file as a dict. The file is re-read on every
    call: `deploy/stack restart-broker` rewrites it."""
    path = path or os.path.join(stack_dir(), "env")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise StackError("%s not found: run deploy/stack start --no-app"
                         % path) from None
    out = {}
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            k, v = words[1].split("=", 1)
            out[k] = v
    return out


def env(**extra):
    """os.environ, then the stack's env file, then extra (str() of each
    value; None removes the key)."""
    e = dict(os.environ)
    e.update(load_env())
    for k, v in extra.items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = str(v)
    return e


def build_dir():
    d = (load_env().get("STOCKSYNC_BUILD_DIR")
         or os.environ.get("STOCKSYNC_BUILD_DIR")
         or os.path.join(ROOT, "build"))
    return os.path.abspath(d)


_BINARIES = {
    "stocksync": "worker/cli/stocksync",
    "stocksync-worker": "worker/stocksync-worker",
    "stocksync-exporter": "worker/exporter/stocksync-exporter",
    "stocksync-devbroker": "deploy/stocksync-devbroker",
}


def binary(name):
    """Path of a built program; StackError when it is not built."""
    path = os.path.join(build_dir(), _BINARIES.get(name, name))
    if not os.access(path, os.X_OK):
        raise StackError("%s is not built (%s): ninja -C %s"
                         % (name, path, build_dir()))
    return path


def topic(name):
    """The configured name of a topic: topic("requests") ->
    $STOCKSYNC_TOPIC_REQUESTS, as deploy/stack created it."""
    defaults = {
        "requests": "stock.sync.requests",
        "status": "stock.sync.status",
        "movements": "stock.movements",
        "dlq": "stock.sync.dlq",
        "export_requests": "stock.export.requests",
        "audit_dlq": "stock.movements.dlq",
    }
    return load_env().get("STOCKSYNC_TOPIC_" + name.upper(), defaults[name])


# ------------------------------------------------------------------ waiting

def wait_for(predicate, timeout=10.0, interval=0.1, what=None):
    """Calls predicate() until it returns something truthy and returns
    that; raises TimeoutError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s"
                               % (timeout, what or getattr(
                                   predicate, "__name__", "a condition")))
        time.sleep(interval)


# ------------------------------------------------------------------ psql

def _sql_literal_param(value):
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    value = str(value)
    if "\0" in value:
        raise ValueError("PostgreSQL text cannot hold NUL")
    return value


def psql(sql, *params, database=None, timeout=60):
    """Runs sql (one or more statements) through psql and returns every row
    of every result as a tuple of str, None for NULL.

    $1, $2... stand for params; each is passed as a psql variable and
    inserted as a quoted literal (:'pN'), so no value is ever spliced into
    the SQL text. None becomes NULL; dicts and lists become JSON text. Cast
    in SQL where the type matters: $1::int. Do not write $N inside string
    literals or dollar-quoted bodies."""
    args = ["psql", "-X", "-q", "-A", "-t", "-0", "-F", _FIELD_SEP,
            "-P", "null=" + _NULL_MARK, "-v", "ON_ERROR_STOP=1"]
    if database:
        args += ["-d", database]

    literals = [_sql_literal_param(p) for p in params]

    def sub(m):
        i = int(m.group(1))
        if i < 1 or i > len(literals):
            raise ValueError("$%d has no parameter" % i)
        return "NULL" if literals[i - 1] is None else ":'p%d'" % i

    text = re.sub(r"\$(\d+)(?![\d$])", sub, sql)
    for i, lit in enumerate(literals, 1):
        if lit is not None:
            args += ["-v", "p%d=%s" % (i, lit)]

    # Variables are interpolated only in input psql reads as a script, not
    # in -c, hence stdin.
    p = subprocess.run(args, input=text.encode(), capture_output=True,
                       env=env(), timeout=timeout)
    if p.returncode != 0:
        raise PsqlError("psql failed (rc %d): %s"
                        % (p.returncode, p.stderr.decode(errors="replace")
                           .strip()))
    out = p.stdout.decode("utf-8")
    rows = out.split("\0")
    if rows and rows[-1] == "":
        rows.pop()
    return [tuple(None if f == _NULL_MARK else f
                  for f in r.split(_FIELD_SEP)) for r in rows]


def psql_value(sql, *params, **kw):
    """The first column of the first row, or None when there is no row."""
    rows = psql(sql, *params, **kw)
    return rows[0][0] if rows else None


# ------------------------------------------------------------------ simulators

# Loopback only: never let an http_proxy variable route our requests.
_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Sim:
    """One store simulator, found through SIM_<PLATFORM>_URL."""

    def __init__(self, platform):
        self.platform = platform
        key = "SIM_%s_URL" % platform.upper().replace("-", "_")
        self.url = load_env().get(key)
        if not self.url:
            raise StackError("%s is not in the stack env: is tests/sim/"
                             "%s_sim.py there?" % (key, platform))

    def request(self, method, path, body=None, headers=None, timeout=30):
        """Any request to the simulator: returns (status, headers, body
        bytes). body may be bytes or a JSON-able object."""
        data = None
        hdrs = dict(headers or {})
        if body is not None:
            if isinstance(body, (bytes, bytearray)):
                data = bytes(body)
            else:
                data = json.dumps(body).encode()
                hdrs.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.url + path, data=data,
                                     headers=hdrs, method=method)
        try:
            with _http.open(req, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def _control(self, method, name, body=None):
        status, _, raw = self.request(method, "/_sim/" + name, body)
        if status != 200:
            raise StackError("%s /_sim/%s: HTTP %d %s" % (
                self.platform, name, status, raw[:200]))
        return json.loads(raw)

    def reset(self):
        self._control("POST", "reset", {})

    def seed(self, items):
        """Adds items (the simulator's own item fields); returns how many."""
        return self._control("POST", "seed", {"items": list(items)})["added"]

    def state(self):
        """Every item as the store holds it."""
        return self._control("GET", "state")["items"]

    def set(self, sku, qty):
        """Changes a level behind our back, as a shopper would."""
        status, _, raw = self.request("POST", "/_sim/set",
                                      {"sku": sku, "qty": qty})
        if status not in (200, 404):
            raise StackError("%s /_sim/set: HTTP %d" % (self.platform,
                                                         status))
        return json.loads(raw)["ok"]

    def fault(self, mode, count=1, **kw):
        """Queues a fault; kw: skip, match, method, retry_after, delay_ms."""
        spec = {"mode": mode, "count": count}
        spec.update(kw)
        self._control("POST", "fault", spec)

    def hook(self, sku, delta=-1, nth=1, method=None, match=""):
        """After the nth matching request, the store's level of sku moves
        by delta."""
        spec = {"sku": sku, "delta": delta, "nth": nth, "match": match}
        if method:
            spec["method"] = method
        self._control("POST", "hook", spec)

    def item_error(self, sku, code="ERROR", message="rejected"):
        """Every write of sku fails with code and message."""
        self._control("POST", "item_error",
                      {"sku": sku, "code": code, "message": message})

    def log(self):
        """Every API request seen since the last reset."""
        return self._control("GET", "log")["requests"]


def sim_platforms():
    """Platforms whose simulator the stack is running."""
    return sorted(k[4:-4].lower() for k in load_env()
                  if k.startswith("SIM_") and k.endswith("_URL"))


# ------------------------------------------------------------------ kafka

class Message:
    """One consumed Kafka message. payload is bytes (None for a null
    message); key is str (undecodable bytes kept as surrogate escapes) or
    None."""

    __slots__ = ("topic", "partition", "offset", "key", "payload",
                 "headers", "ts")

    def __init__(self, d):
        self.topic = d["topic"]
        self.partition = d["partition"]
        self.offset = d["offset"]
        self.key = d.get("key")
        p = d.get("payload")
        self.payload = (None if p is None
                        else p.encode("utf-8", "surrogateescape"))
        h = d.get("headers") or []
        self.headers = list(zip(h[0::2], h[1::2]))
        self.ts = d.get("ts")

    def json(self):
        """The payload parsed as JSON (ValueError if it is not)."""
        return json.loads(self.payload)

    def header(self, name):
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def __repr__(self):
        return "Message(%s[%d]@%d key=%r payload=%r)" % (
            self.topic, self.partition, self.offset, self.key,
            self.payload[:80] if self.payload else self.payload)


def _brokers():
    b = load_env().get("STOCKSYNC_BROKERS")
    if not b:
        raise StackError("STOCKSYNC_BROKERS missing from the stack env")
    return b


def kafka_consume(topic, timeout=30.0, offset="beginning", partition=None,
                  count=None):
    """Reads topic from offset ("beginning", "end", a number, or
    "s@<ms>") to the current end of every partition and returns the
    messages as Message objects. timeout bounds the kcat run."""
    args = ["kcat", "-b", _brokers(), "-C", "-t", topic, "-o", str(offset),
            "-e", "-J", "-q", "-u"]
    if partition is not None:
        args += ["-p", str(partition)]
    if count is not None:
        args += ["-c", str(count)]
    try:
        p = subprocess.run(args, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise StackError("kcat -C %s did not finish in %.0fs"
                         % (topic, timeout)) from None
    if p.returncode != 0:
        raise StackError("kcat -C %s failed (rc %d): %s" % (
            topic, p.returncode, p.stderr.decode(errors="replace").strip()))
    # kcat writes payload bytes that are not UTF-8 as they are.
    text = p.stdout.decode("utf-8", "surrogateescape")
    return [Message(json.loads(line)) for line in text.splitlines()
            if line.strip()]


def kafka_wait(topic, predicate, timeout=30.0, what=None):
    """Re-reads topic until predicate(messages) is truthy; returns it."""
    return wait_for(lambda: predicate(kafka_consume(topic)), timeout,
                    interval=0.25, what=what or "messages on " + topic)


def kafka_produce(topic, key, payload, partition=None, headers=None,
                  timeout=30.0):
    """Produces one message and waits for its delivery. payload is bytes
    (or str, sent as UTF-8); key may be None."""
    if isinstance(payload, str):
        payload = payload.encode()
    args = ["kcat", "-b", _brokers(), "-P", "-t", topic, "-q"]
    if partition is not None:
        args += ["-p", str(partition)]
    for k, v in (headers or {}).items():
        args += ["-H", "%s=%s" % (k, v)]

    if payload:
        # File mode sends a file as one message, newlines and all.
        with tempfile.NamedTemporaryFile(prefix="kafka-msg-") as f:
            f.write(payload)
            f.flush()
            if key is not None:
                args += ["-k", key]
            p = subprocess.run(args + [f.name], capture_output=True,
                               timeout=timeout)
    else:
        # kcat skips empty files and empty lines, but not an empty value
        # after a key delimiter.
        if key is not None and "\x1f" in key:
            raise ValueError("key must not hold \\x1f")
        args += ["-K", "\x1f"]
        line = ("" if key is None else key) + "\x1f\n"
        p = subprocess.run(args, input=line.encode(), capture_output=True,
                           timeout=timeout)
    if p.returncode != 0:
        raise StackError("kcat -P %s failed (rc %d): %s" % (
            topic, p.returncode, p.stderr.decode(errors="replace").strip()))


def kafka_metadata():
    """{topic: partition count} as the broker reports it."""
    p = subprocess.run(["kcat", "-b", _brokers(), "-L", "-J"],
                       capture_output=True, timeout=30)
    if p.returncode != 0:
        raise StackError("kcat -L failed: %s" % p.stderr.decode(
            errors="replace").strip())
    meta = json.loads(p.stdout)
    return {t["topic"]: len(t["partitions"]) for t in meta["topics"]}


def broker_control(command):
    """Sends one command (topic NAME N, down ID, up ID, rtt ID MS, leader
    TOPIC PARTITION ID, err API_KEY CODE [COUNT]) to the devbroker. The
    FIFO is opened non-blocking, so a dead broker gives an error instead
    of a write that hangs for ever."""
    path = load_env().get("STOCKSYNC_BROKER_CONTROL")
    if not path:
        raise StackError("STOCKSYNC_BROKER_CONTROL missing from the stack env")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as e:
        raise StackError("broker control %s: %s" % (path, e)) from None
    try:
        os.write(fd, (command.strip() + "\n").encode())
    finally:
        os.close(fd)


# ------------------------------------------------------------------ programs

def cli(*args, input=None, timeout=120, extra_env=None):
    """Runs `stocksync ARGS...`; returns (rc, stdout, stderr) as str."""
    p = subprocess.run([binary("stocksync")] + [str(a) for a in args],
                       input=input.encode() if isinstance(input, str)
                       else input,
                       capture_output=True, env=env(**(extra_env or {})),
                       timeout=timeout)
    return (p.returncode, p.stdout.decode(errors="replace"),
            p.stderr.decode(errors="replace"))


def fresh_db():
    """Drops and recreates the stocksync database and migrates it. Stop the
    workers first: FORCE ends every open session."""
    psql("DROP DATABASE IF EXISTS stocksync WITH (FORCE)",
         database="postgres")
    psql("CREATE DATABASE stocksync", database="postgres")
    rc, out, err = cli("migrate")
    if rc != 0:
        raise StackError("stocksync migrate failed (rc %d): %s%s"
                         % (rc, out, err))


# Every Daemons object that started something, for the exit handler.
_started = []


def _exit_on_term(signum, frame):
    # SIGTERM (a timeout, a killed benchmark) must still run the atexit
    # handler below, or the daemons it started outlive the run and join
    # the next run's consumer group.
    raise SystemExit(128 + signum)


if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
    signal.signal(signal.SIGTERM, _exit_on_term)


@atexit.register
def _stop_leftovers():
    for d in _started:
        d.close()


class Daemons:
    """N processes of one stocksync daemon, each logging to its own file
    under the stack's logs/ directory. Use as a context manager, or call
    stop(); processes still running when Python exits get SIGTERM, then
    SIGKILL."""

    program = None

    def __init__(self, n=1, extra_env=None, args=()):
        self.n = n
        self.extra_env = dict(extra_env or {})
        self.args = list(args)
        self.procs = []
        self.logs = []

    def start(self, n=None):
        """Starts n more processes (default: the n given at creation)."""
        exe = binary(self.program)
        logdir = os.path.join(stack_dir(), "logs")
        os.makedirs(logdir, exist_ok=True)
        for _ in range(self.n if n is None else n):
            i = len(self.procs)
            path = os.path.join(logdir, "%s-%d-%d.log" % (
                self.program, os.getpid(), i))
            with open(path, "ab") as log:
                p = subprocess.Popen([exe] + self.args,
                                     env=env(**self.extra_env),
                                     stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT,
                                     cwd=stack_dir(),
                                     start_new_session=True)
            self.procs.append(p)
            self.logs.append(path)
        if self not in _started:
            _started.append(self)
        return self

    def pids(self):
        return [p.pid for p in self.procs]

    def alive(self):
        return [p for p in self.procs if p.poll() is None]

    def _pick(self, index):
        return self.procs if index is None else [self.procs[index]]

    def signal(self, sig, index=None):
        """Signals each process' group (it leads one of its own), so
        anything it started goes too."""
        for p in self._pick(index):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, sig)
                except ProcessLookupError:
                    pass

    def wait(self, timeout=30.0, index=None):
        """Waits for the processes to exit; returns their exit codes.
        Raises subprocess.TimeoutExpired if one is still running."""
        deadline = time.monotonic() + timeout
        return [p.wait(max(0.0, deadline - time.monotonic()))
                for p in self._pick(index)]

    def stop(self, timeout=30.0, index=None):
        """SIGTERM, then wait; returns the exit codes."""
        self.signal(signal.SIGTERM, index)
        return self.wait(timeout, index)

    def kill(self, index=None):
        """SIGKILL, then reap; returns the exit codes (-9)."""
        self.signal(signal.SIGKILL, index)
        return self.wait(10.0, index)

    def log(self, index=0):
        with open(self.logs[index], encoding="utf-8",
                  errors="replace") as f:
            return f.read()

    def close(self):
        """Stops what still runs: SIGTERM, and SIGKILL after 15 s."""
        if not self.alive():
            return
        try:
            self.stop(15.0)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self):
        if not self.procs:
            self.start()
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Worker(Daemons):
    program = "stocksync-worker"


class Exporter(Daemons):
    program = "stocksync-exporter"

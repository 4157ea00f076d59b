"""Crawling on many machines: one Redis holds the runs' queues, leases and result streams.

Keys (``P`` is the prefix, ``detector`` unless told otherwise; ``R`` a run id):

- ``P:runs``: sorted set of open runs, by creation time (oldest is crawled first).
- ``P:run:R``: hash: command, options (JSON), state (``enqueuing``, ``open``, ``done``),
  ``enqueued``, ``ok``, ``failed``, ``abandoned``, ``written``.
- ``P:run:R:queue``: list of domains waiting for a worker.
- ``P:run:R:leases``: sorted set domain -> lease expiry (ms, Redis's clock); ``P:run:R:owners``
  (domain -> worker) and ``P:run:R:attempts`` (domain -> leases taken) beside it.
- ``P:run:R:done``: set of domains whose result was accepted: each domain's result enters the
  stream at most once per run, whichever worker finishes first.
- ``P:run:R:results``: stream of results (``domain``, ``kind`` = ``scan`` | ``abandoned``,
  ``data`` = the scan as JSON), read by the one writer through the consumer group ``writer``;
  an entry is acknowledged and deleted only after its scan is committed to SQLite.
- ``P:workers``: sorted set worker id -> last heartbeat (ms); ``P:library:VERSION``: the
  technologies a worker's signature library knows (the writer's ``known`` set for misses).

Every state change is one Lua script, so it is atomic on the server: a worker killed between
two commands leaves no half-moved domain.  A lease that is not renewed in time (the worker died
or hangs) is taken back by whoever reaps next (any worker, the writer) and the domain goes
back to the front of the queue; after ``max_attempts`` leases it is abandoned (an error scan
says so) rather than kill workers forever.  The writer skips a scan whose (run, domain) is in
the database already, so a writer killed between its commit and its acknowledgement stores
nothing twice when it starts again.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from detector.engine.verdict import SiteDetection
from detector.errors import DetectorError
from detector.store.scans import ScanResult

#: Default seconds a worker holds a domain without renewing before it goes back to the queue.
LEASE_SECONDS = 60.0
#: Leases a domain may take before it is abandoned as an error scan (its workers kept dying).
MAX_ATTEMPTS = 3
#: How long a running worker or writer waits for Redis to come back before failing.
PATIENCE_SECONDS = 60.0
#: Workers seen within this many seconds count as alive in ``status``.
WORKER_SEEN_SECONDS = 60.0
#: A run still ``enqueuing`` whose queue has not grown for this long lost its enqueuer (killed,
#: its machine gone): the next reap seals it with what was queued, so workers and the writer
#: finish it instead of waiting for domains that will never come.
ENQUEUE_STALE_SECONDS = 300.0
DEFAULT_PREFIX = "detector"
GROUP = "writer"
#: Connection parameters for every client (scrapy-redis's REDIS_PARAMS for the workers).
REDIS_PARAMS: dict[str, Any] = {
    "socket_connect_timeout": 5,
    "socket_timeout": 15,
    "health_check_interval": 15,
}


class DistributedError(DetectorError):
    """Redis cannot be reached or used, or a run in it cannot be found."""


def redact(url: str) -> str:
    """A Redis URL fit for messages: the password replaced by ``***``.

    >>> redact("rediss://:s3cret@cache.internal:6380/2"), redact("redis://127.0.0.1:6379")
    ('rediss://:***@cache.internal:6380/2', 'redis://127.0.0.1:6379')
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def check_url(url: str) -> None:
    """Raise :class:`DistributedError` unless ``url`` is a redis://, rediss:// or unix:// URL."""
    scheme = urlsplit(url).scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise DistributedError(
            f'"{redact(url)}" is not a Redis URL; write it like redis://host:6379/0, '
            "rediss://:password@host:6380/0 (TLS) or unix:///run/redis.sock"
        )


def worker_name() -> str:
    """This process's worker id: host name and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


# ---------------------------------------------------------------------------- results as JSON


def encode_scan(scan: ScanResult) -> str:
    """A scan as JSON text (never pickle: Redis is shared, and pickle runs code when read)."""
    data = dataclasses.asdict(scan)
    data["detections"] = [d.to_dict() for d in scan.detections]
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def decode_scan(text: str | bytes) -> ScanResult:
    """The scan of :func:`encode_scan`."""
    data = json.loads(text)
    detections = tuple(
        SiteDetection(d["technology"], d["version"], int(d["confidence"]), tuple(d["categories"]),
                      tuple(d["evidence"]))
        for d in data.pop("detections")
    )
    fields = {f.name for f in dataclasses.fields(ScanResult)}
    return ScanResult(**{k: v for k, v in data.items() if k in fields}, detections=detections)


# ---------------------------------------------------------------------------- Lua scripts

_NOW = "local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

# KEYS: run, queue, leases, owners, attempts, done   ARGV: worker, lease ms, how many
_LEASE = _NOW + """
if redis.call('HGET', KEYS[1], 'state') == 'done' then return {} end
local out = {}
local n = tonumber(ARGV[3])
while #out < n do
  local d = redis.call('LPOP', KEYS[2])
  if not d then break end
  if redis.call('SISMEMBER', KEYS[6], d) == 0 then
    redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), d)
    redis.call('HSET', KEYS[4], d, ARGV[1])
    redis.call('HINCRBY', KEYS[5], d, 1)
    out[#out + 1] = d
  end
end
return out
"""

# KEYS: leases, owners   ARGV: worker, lease ms, domains...
_RENEW = _NOW + """
local n = 0
for i = 3, #ARGV do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[1] then
    redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[i])
    n = n + 1
  end
end
return n
"""

# KEYS: run, done, leases, owners, results   ARGV: domain, ok|failed, data
_COMPLETE = """
if redis.call('HGET', KEYS[1], 'state') == 'done' then return 0 end
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('XADD', KEYS[5], '*', 'domain', ARGV[1], 'kind', 'scan', 'data', ARGV[3])
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
return 1
"""

# KEYS: leases, owners, queue   ARGV: worker, domains...   (a worker stopping gives back its domains)
_RELEASE = """
local n = 0
for i = 2, #ARGV do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[1] then
    redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('HDEL', KEYS[2], ARGV[i])
    redis.call('LPUSH', KEYS[3], ARGV[i])
    n = n + 1
  end
end
return n
"""

# KEYS: run, leases, owners, attempts, done, queue, results   ARGV: max attempts
_REAP = _NOW + """
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 500)
local requeued, abandoned = 0, 0
for _, d in ipairs(expired) do
  redis.call('ZREM', KEYS[2], d)
  redis.call('HDEL', KEYS[3], d)
  if redis.call('SISMEMBER', KEYS[5], d) == 0 then
    local tries = tonumber(redis.call('HGET', KEYS[4], d) or '0')
    if tries >= tonumber(ARGV[1]) then
      redis.call('SADD', KEYS[5], d)
      redis.call('XADD', KEYS[7], '*', 'domain', d, 'kind', 'abandoned', 'data', tostring(tries))
      redis.call('HINCRBY', KEYS[1], 'failed', 1)
      redis.call('HINCRBY', KEYS[1], 'abandoned', 1)
      abandoned = abandoned + 1
    else
      redis.call('LPUSH', KEYS[6], d)
      requeued = requeued + 1
    end
  end
end
return {requeued, abandoned}
"""


# ---------------------------------------------------------------------------- the queue


@dataclass(frozen=True, slots=True)
class Entry:
    """One result read from a run's stream by the writer."""

    run_id: str
    entry_id: str
    domain: str
    kind: str
    data: str


class RunQueue:
    """The runs in one Redis: enqueue, lease, renew, complete, reap, read results, status."""

    def __init__(self, client: Any, url: str, *, prefix: str = DEFAULT_PREFIX, lease: float = LEASE_SECONDS,
                 max_attempts: int = MAX_ATTEMPTS, patience: float = PATIENCE_SECONDS,
                 enqueue_stale: float = ENQUEUE_STALE_SECONDS) -> None:
        self.client = client
        self.enqueue_stale = enqueue_stale
        self.url = url
        self.prefix = prefix
        self.lease_ms = max(1, int(lease * 1000))
        self.max_attempts = max(1, max_attempts)
        self.patience = patience
        self._scripts = {name: client.register_script(src) for name, src in
                         (("lease", _LEASE), ("renew", _RENEW), ("complete", _COMPLETE),
                          ("release", _RELEASE), ("reap", _REAP))}

    @classmethod
    def connect(cls, url: str, *, client: Any = None, **kwargs: Any) -> RunQueue:
        """Connect and check Redis answers (at once: an unreachable Redis is an error, not a wait)."""
        import redis

        check_url(url)
        if client is None:
            try:
                client = redis.Redis.from_url(url, **REDIS_PARAMS)
            except ValueError as exc:
                raise DistributedError(f"{redact(url)}: {exc}") from None
        queue = cls(client, url, **kwargs)
        try:
            client.ping()
        except redis.AuthenticationError as exc:
            raise DistributedError(f"{redact(url)}: Redis refused the password ({exc}). "
                                   "Put the right one in the URL: redis://:PASSWORD@host:6379/0") from None
        except redis.RedisError as exc:
            raise DistributedError(
                f"{redact(url)}: cannot reach Redis ({exc}). Check the URL, that redis-server runs and "
                "that it listens on that address (its bind and port settings); nothing was done."
            ) from None
        return queue

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()

    # -------------------------------------------------------------- keys
    def key(self, *parts: str) -> str:
        """``prefix:part:part``."""
        return ":".join((self.prefix, *parts))

    def run_keys(self, run_id: str) -> dict[str, str]:
        """The keys of one run, by role."""
        base = self.key("run", run_id)
        return {"run": base, **{k: f"{base}:{k}" for k in
                                ("queue", "leases", "owners", "attempts", "done", "results")}}

    # -------------------------------------------------------------- patience
    def call(self, what: str, func: Callable[[], Any]) -> Any:
        """Run ``func``; while Redis is unreachable retry for up to ``patience`` seconds, then fail."""
        import redis

        deadline = time.monotonic() + self.patience
        delay = 0.1
        while True:
            try:
                return func()
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
                if time.monotonic() >= deadline:
                    raise DistributedError(
                        f"{redact(self.url)}: Redis has not answered for {self.patience:.0f} s while "
                        f"{what} ({exc}). Start it again (with persistence on, nothing it held is lost) "
                        "and run this command again."
                    ) from None
                time.sleep(delay)
                delay = min(2.0, delay * 2)
            except redis.ResponseError as exc:
                raise DistributedError(f"{redact(self.url)}: Redis refused {what}: {exc}") from None

    def script(self, name: str, what: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run one of the Lua scripts, patiently."""
        return self.call(what, lambda: self._scripts[name](keys=list(keys), args=list(args)))

    # -------------------------------------------------------------- enqueuing
    def create_run(self, run_id: str, command: str, options: Mapping[str, Any]) -> None:
        """Register a run (state ``enqueuing``) and its result stream's consumer group."""
        keys = self.run_keys(run_id)

        def create() -> None:
            pipe = self.client.pipeline()
            pipe.hset(keys["run"], mapping={"command": command, "state": "enqueuing", "enqueued": 0,
                                            "created_at": time.time(), "touched_at": self._clock(),
                                            "options": json.dumps(dict(options), sort_keys=True)})
            pipe.xgroup_create(keys["results"], GROUP, id="0", mkstream=True)
            pipe.zadd(self.key("runs"), {run_id: time.time()})
            pipe.execute()

        self.call("creating the run", create)

    def push(self, run_id: str, domains: Iterable[str], *, batch: int = 2000) -> int:
        """Append domains to a run's queue in batches; return how many."""
        keys = self.run_keys(run_id)
        total = 0
        chunk: list[str] = []

        def send(items: list[str]) -> None:
            pipe = self.client.pipeline()
            pipe.rpush(keys["queue"], *items)
            pipe.hincrby(keys["run"], "enqueued", len(items))
            pipe.hset(keys["run"], "touched_at", self._clock())
            pipe.execute()

        def flush(items: list[str]) -> int:
            self.call("enqueuing domains", lambda: send(items))
            return len(items)

        for domain in domains:
            chunk.append(domain)
            if len(chunk) >= batch:
                total += flush(chunk)
                chunk = []
        if chunk:
            total += flush(chunk)
        return total

    def seal(self, run_id: str, *, cut_short: str = "") -> None:
        """Every domain of the run is queued: it is complete once they all have results.

        ``cut_short``: why the run is sealed before its whole list was queued (kept in the run's
        ``cut_short`` field, which ``status`` shows).
        """
        fields = {"state": "open", **({"cut_short": cut_short} if cut_short else {})}
        self.call("sealing the run", lambda: self.client.hset(self.run_keys(run_id)["run"], mapping=fields))

    def _clock(self) -> float:
        """Redis's clock, in seconds (one clock for every machine of a crawl); call it inside
        :meth:`call`."""
        seconds, micros = self.client.time()
        return float(seconds) + float(micros) / 1e6

    def _server_time(self) -> float:
        return float(self.call("reading Redis's clock", self._clock))

    def seal_abandoned(self, runs: Sequence[str] | None = None) -> list[str]:
        """Seal the runs (default: the open ones) still ``enqueuing`` whose queue has not grown
        for ``enqueue_stale`` seconds (their enqueuer died); return their ids."""
        sealed = []
        now: float | None = None
        for run_id in self.open_runs() if runs is None else runs:
            info = self.run_info(run_id)
            if info.get("state") != "enqueuing":
                continue
            now = self._server_time() if now is None else now
            touched = float(info.get("touched_at") or info.get("created_at") or 0)
            if now - touched > self.enqueue_stale:
                minutes = self.enqueue_stale / 60
                self.seal(run_id, cut_short=f"its enqueuer stopped: nothing was queued for {minutes:g} minutes")
                sealed.append(run_id)
        return sealed

    # -------------------------------------------------------------- workers
    def open_runs(self) -> list[str]:
        """Open runs, oldest first."""
        return [_text(r) for r in self.call("listing runs", lambda: self.client.zrange(self.key("runs"), 0, -1))]

    def lease(self, worker: str, n: int) -> list[tuple[str, str]]:
        """Up to ``n`` (run, domain) pairs, from the oldest run with queued domains."""
        for run_id in self.open_runs():
            k = self.run_keys(run_id)
            got = self.script("lease", "leasing domains",
                              [k["run"], k["queue"], k["leases"], k["owners"], k["attempts"], k["done"]],
                              [worker, self.lease_ms, n])
            if got:
                return [(run_id, _text(d)) for d in got]
        return []

    def renew(self, worker: str, leased: Iterable[tuple[str, str]]) -> int:
        """Push back the expiry of this worker's leases; return how many it still holds."""
        n = 0
        for run_id, domains in _by_run(leased).items():
            k = self.run_keys(run_id)
            n += int(self.script("renew", "renewing leases", [k["leases"], k["owners"]],
                                 [worker, self.lease_ms, *domains]))
        return n

    def release(self, worker: str, leased: Iterable[tuple[str, str]]) -> int:
        """Give this worker's unfinished domains back to the front of their queues."""
        n = 0
        for run_id, domains in _by_run(leased).items():
            k = self.run_keys(run_id)
            n += int(self.script("release", "releasing leases", [k["leases"], k["owners"], k["queue"]],
                                 [worker, *domains]))
        return n

    def complete(self, scans: Sequence[ScanResult]) -> int:
        """Hand results to the writer, once per (run, domain); return how many were accepted."""
        if not scans:
            return 0

        def send() -> int:
            pipe = self.client.pipeline(transaction=False)
            for scan in scans:
                k = self.run_keys(scan.run_id)
                self._scripts["complete"](
                    keys=[k["run"], k["done"], k["leases"], k["owners"], k["results"]],
                    args=[scan.domain, "ok" if scan.status == "ok" else "failed", encode_scan(scan)],
                    client=pipe)
            return sum(int(x) for x in pipe.execute())

        return int(self.call("sending results", send))

    def reap(self) -> tuple[int, int]:
        """Take back expired leases of every open run: (re-queued, abandoned); seal the runs
        their enqueuer abandoned (:meth:`seal_abandoned`)."""
        runs = self.open_runs()
        self.seal_abandoned(runs)
        requeued = abandoned = 0
        for run_id in runs:
            k = self.run_keys(run_id)
            r, a = self.script("reap", "re-queueing expired leases",
                               [k["run"], k["leases"], k["owners"], k["attempts"], k["done"], k["queue"],
                                k["results"]], [self.max_attempts])
            requeued, abandoned = requeued + int(r), abandoned + int(a)
        return requeued, abandoned

    def heartbeat(self, worker: str, done: int = 0) -> None:
        """Say this worker is alive (and how many domains it finished since the last beat)."""
        def beat() -> None:
            pipe = self.client.pipeline(transaction=False)
            pipe.zadd(self.key("workers"), {worker: int(time.time() * 1000)})
            if done:
                pipe.hincrby(self.key("worker", worker), "domains", done)
            pipe.expire(self.key("worker", worker), 7 * 86400)
            pipe.execute()

        self.call("sending a heartbeat", beat)

    def publish_library(self, version: str, technologies: Iterable[str]) -> None:
        """Record which technologies a library version can detect (the writer's ``known``)."""
        names = list(technologies)
        key = self.key("library", version)
        if names:
            self.call("publishing the signature library", lambda: self.client.sadd(key, *names))

    def library(self, version: str) -> frozenset[str] | None:
        """The technologies of a library version, if a worker published them."""
        names = self.call("reading the signature library",
                          lambda: self.client.smembers(self.key("library", version)))
        return frozenset(_text(n) for n in names) if names else None

    def idle(self) -> bool:
        """True when no open run is enqueuing, has queued domains or holds leases."""
        for run_id in self.open_runs():
            info = self.counts(run_id)
            if info["state"] == "enqueuing" or info["queued"] or info["leased"]:
                return False
        return True

    # -------------------------------------------------------------- the writer
    def run_info(self, run_id: str) -> dict[str, Any]:
        """A run's hash, decoded (empty when Redis does not know the run)."""
        raw = self.call("reading the run", lambda: self.client.hgetall(self.run_keys(run_id)["run"]))
        info = {_text(k): _text(v) for k, v in raw.items()}
        if "options" in info:
            info["options"] = json.loads(info["options"])
        return info

    def read(self, runs: Sequence[str], *, pending: bool, count: int = 500, block_ms: int = 1000) -> list[Entry]:
        """Results for the writer: its unacknowledged ones (``pending``) or new ones."""
        if not runs:
            return []
        streams = {self.run_keys(r)["results"]: ("0" if pending else ">") for r in runs}
        by_key = {self.run_keys(r)["results"]: r for r in runs}
        raw = self.call("reading results", lambda: self.client.xreadgroup(
            GROUP, GROUP, streams, count=count, block=None if pending else block_ms))
        out: list[Entry] = []
        for key, entries in raw or []:
            run_id = by_key[_text(key)]
            for entry_id, fields in entries:
                if not fields:
                    continue  # deleted while pending
                f = {_text(k): _text(v) for k, v in fields.items()}
                out.append(Entry(run_id, _text(entry_id), f["domain"], f.get("kind", "scan"), f.get("data", "")))
        return out

    def acknowledge(self, entries: Sequence[Entry]) -> None:
        """The entries are committed to SQLite: acknowledge and delete them, count them written."""
        def ack() -> None:
            pipe = self.client.pipeline()
            for run_id, ids in _by_run((e.run_id, e.entry_id) for e in entries).items():
                k = self.run_keys(run_id)
                pipe.xack(k["results"], GROUP, *ids)
                pipe.xdel(k["results"], *ids)
                pipe.hincrby(k["run"], "written", len(ids))
            pipe.execute()

        if entries:
            self.call("acknowledging results", ack)

    def counts(self, run_id: str) -> dict[str, Any]:
        """Queued, leased, done, ok, failed, written, unread results and state of a run."""
        k = self.run_keys(run_id)

        def read() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            pipe.hgetall(k["run"])
            pipe.llen(k["queue"])
            pipe.zcard(k["leases"])
            pipe.scard(k["done"])
            pipe.xlen(k["results"])
            return list(pipe.execute())

        raw, queued, leased, done, unread = self.call("reading the run's counts", read)
        info = {_text(a): _text(b) for a, b in raw.items()}
        return {
            "run_id": run_id,
            "command": info.get("command", ""),
            "state": info.get("state", "unknown"),
            "enqueued": int(info.get("enqueued", 0)),
            "queued": int(queued),
            "leased": int(leased),
            "done": int(done),
            "ok": int(info.get("ok", 0)),
            "failed": int(info.get("failed", 0)),
            "abandoned": int(info.get("abandoned", 0)),
            "written": int(info.get("written", 0)),
            "unwritten": int(unread),
            "cut_short": info.get("cut_short", ""),
        }

    def complete_run(self, run_id: str) -> bool:
        """True when every queued domain has a result and the writer stored them all."""
        c = self.counts(run_id)
        return bool(c["state"] == "open" and c["done"] >= c["enqueued"] and c["unwritten"] == 0)

    def close_run(self, run_id: str) -> None:
        """A finished run: mark it done, drop its queue keys, keep its hash for a week."""
        k = self.run_keys(run_id)

        def close() -> None:
            pipe = self.client.pipeline()
            pipe.hset(k["run"], "state", "done")
            pipe.zrem(self.key("runs"), run_id)
            pipe.delete(k["queue"], k["leases"], k["owners"], k["attempts"], k["done"], k["results"])
            pipe.expire(k["run"], 7 * 86400)
            pipe.execute()

        self.call("closing the run", close)

    # -------------------------------------------------------------- status
    def status(self) -> dict[str, Any]:
        """Open runs with their counts, and the workers seen in the last minute."""
        now_ms = int(time.time() * 1000)
        since = now_ms - int(WORKER_SEEN_SECONDS * 1000)
        runs = [self.counts(r) for r in self.open_runs()]
        seen = self.call("reading workers", lambda: self.client.zrangebyscore(
            self.key("workers"), since, "+inf", withscores=True))
        workers = []
        for name, score in seen:
            worker = _text(name)
            domains = self.call("reading workers", partial(self.client.hget, self.key("worker", worker), "domains"))
            workers.append({"worker": worker, "seen_seconds_ago": round((now_ms - score) / 1000, 1),
                            "domains": int(domains or 0)})
        totals = {k: sum(r[k] for r in runs) for k in ("queued", "leased", "done", "ok", "failed", "written")}
        return {"redis": redact(self.url), "prefix": self.prefix, "runs": runs, **totals, "workers": workers}


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _by_run(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for run_id, item in pairs:
        out.setdefault(run_id, []).append(item)
    return out

"""Redis key names, the prefix rule and connections: the Python side of
transport/keys.go and transport/find.go (docs/FORMAT.md "Transports", "Redis").

One rule everywhere: a flag set's prefix is ``flagsync:<flagSetId>`` (``flagsync:default``
when a reader is given neither a prefix nor a flag set id), and every key name starts
with ``{<prefix>}`` (the prefix as a Redis Cluster hash tag) unless the prefix already
holds a hash tag.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

if TYPE_CHECKING:
    import redis

DEFAULT_FLAG_SET_ID = "default"


def default_prefix(flag_set_id: str | None = None) -> str:
    """The prefix of a flag set: ``flagsync:<flag_set_id>`` (``default`` when empty)."""
    return "flagsync:" + (flag_set_id or DEFAULT_FLAG_SET_ID)


def has_hash_tag(s: str) -> bool:
    """Whether s holds a Redis Cluster hash tag (non-empty text between the first "{"
    and the first "}" after it)."""
    start = s.find("{")
    if start < 0:
        return False
    end = s.find("}", start + 1)
    return end > start + 1


def key_base(prefix: str) -> str:
    """What every key name of prefix starts with: "{prefix}", or prefix itself when it
    already holds a hash tag."""
    return prefix if has_hash_tag(prefix) else "{" + prefix + "}"


@dataclass(frozen=True)
class Keys:
    snapshot: str
    revision: str
    generation: str
    channel: str


def _keys_under(base: str) -> Keys:
    return Keys(f"{base}:snapshot", f"{base}:revision", f"{base}:generation", f"{base}:changes")


def keys_for(prefix: str) -> Keys:
    """The key names under prefix (all in one cluster slot)."""
    return _keys_under(key_base(prefix))


def legacy_keys_for(prefix: str) -> Keys:
    """The names without hash tag that daemons wrote before (and still write while
    outputs.redis.legacyKeys is on)."""
    return _keys_under(prefix)


def prefix_of_snapshot_key(key: str) -> tuple[str, bool] | None:
    """(prefix a reader is configured with, legacy shape) for a snapshot key, else None."""
    if not key.endswith(":snapshot") or len(key) == len(":snapshot"):
        return None
    base = key[: -len(":snapshot")]
    if base.startswith("{") and base.endswith("}"):
        inner = base[1:-1]
        if inner and "{" not in inner and "}" not in inner:
            return inner, False
    if has_hash_tag(base):
        return base, False
    return base, True


@dataclass(frozen=True)
class FoundSnapshot:
    prefix: str
    key: str
    legacy: bool

    def __str__(self) -> str:
        return f"{self.prefix} (old key names, {self.key})" if self.legacy else self.prefix


def find_snapshots(
    client: Any, *, count: int = 500, max_keys: int = 20, timeout: float = 0.5
) -> tuple[list[FoundSnapshot], bool]:
    """The snapshot keys present (SCAN MATCH *:snapshot on every primary of a cluster),
    sorted, and whether the listing is complete. Bounded by max_keys and timeout: it runs
    on a reader's error path and must not load a big Redis."""
    deadline = time.monotonic() + timeout
    keys: set[str] = set()
    complete = True
    get_primaries = getattr(client, "get_primaries", None)
    targets: list[Any] = (
        [client.get_redis_connection(n) for n in get_primaries()]
        if callable(get_primaries)
        else [client]
    )
    for node in targets:
        cursor = 0
        while True:
            if time.monotonic() >= deadline or len(keys) >= max_keys:
                complete = False
                break
            cursor, batch = node.scan(cursor, match="*:snapshot", count=count)
            keys.update(k.decode() if isinstance(k, bytes) else str(k) for k in batch)
            if cursor == 0:
                break
        if not complete:
            break
    found = []
    for k in keys:
        p = prefix_of_snapshot_key(k)
        if p is not None:
            found.append(FoundSnapshot(p[0], k, p[1]))
    found.sort(key=lambda f: f.key)
    if len(found) > max_keys:
        found, complete = found[:max_keys], False
    return found, complete


class NoSnapshotError(LookupError):
    """No snapshot under the reader's prefix; present lists the prefixes that hold one."""

    def __init__(
        self,
        prefix: str,
        present: list[FoundSnapshot],
        complete: bool,
        scan_error: BaseException | None = None,
    ) -> None:
        self.prefix = prefix
        self.key = keys_for(prefix).snapshot
        self.present = present
        self.complete = complete
        self.scan_error = scan_error
        super().__init__(self._message())

    def _message(self) -> str:
        msg = f'no snapshot under prefix "{self.prefix}" (key {self.key})'
        if self.scan_error is not None:
            return f"{msg}; could not list the prefixes present: {self.scan_error}"
        if not self.present:
            return (
                f"{msg}; no snapshot key (*:snapshot) found in this Redis:"
                " has the daemon published here?"
            )
        names = ", ".join(str(f) for f in self.present)
        more = "" if self.complete else ", and maybe more"
        return (
            f"{msg}; snapshots present under: {names}{more} (the daemon's prefix is "
            "flagsync:<flagSetId> unless outputs.redis.prefix says otherwise)"
        )


def explain_missing(client: Any, prefix: str, redis_error: type[BaseException]) -> NoSnapshotError:
    try:
        found, complete = find_snapshots(client)
    except redis_error as e:
        return NoSnapshotError(prefix, [], False, e)
    return NoSnapshotError(prefix, found, complete)


SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


def connect(url: str, socket_timeout: float) -> redis.Redis | redis.RedisCluster:
    """A client for url: redis://, rediss://, unix:// (one server),
    redis+sentinel://[user:password@]host:port,host:port/<master>[/db] (a master found
    through Sentinel; sentinel_username/sentinel_password query parameters authenticate
    to the sentinels), or redis+cluster://[user:password@]host:port,host:port (a
    cluster from seed nodes). The rediss+ forms use TLS (ssl_ca_certs= and other
    redis-py ssl_* options as query parameters)."""
    import redis as redis_mod
    from redis.cluster import ClusterNode, RedisCluster
    from redis.sentinel import Sentinel

    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    timeouts: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout,
    }
    if scheme not in SENTINEL_SCHEMES + CLUSTER_SCHEMES:
        return redis_mod.Redis.from_url(url, **timeouts)

    field = "sentinel" if scheme in SENTINEL_SCHEMES else "cluster"
    hostlist = parts.netloc.rpartition("@")[2]
    nodes: list[tuple[str, int]] = []
    for i, hp in enumerate(hostlist.split(",")):
        host, _, port = hp.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{field} URL: address {i} must be host:port")
        nodes.append((host, int(port)))
    auth: dict[str, Any] = {}
    if parts.username:
        auth["username"] = unquote(parts.username)
    if parts.password is not None:
        auth["password"] = unquote(parts.password)
    q = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    tls: dict[str, Any] = {}
    if scheme.startswith("rediss"):
        tls["ssl"] = True
        for k in list(q):
            if k.startswith("ssl_"):
                tls[k] = q.pop(k)
    if scheme in CLUSTER_SCHEMES:
        if parts.path.strip("/") not in ("", "0"):
            raise ValueError("cluster URL: Redis Cluster has only database 0")
        if q:
            raise ValueError(f"cluster URL: unknown query parameters {sorted(q)}")
        seeds = [ClusterNode(h, p) for h, p in nodes]  # type: ignore[no-untyped-call]
        return RedisCluster(startup_nodes=seeds, **auth, **tls, **timeouts)
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ValueError("sentinel URL: the path must be /<master name>[/<db>]")
    sentinel_auth = {}
    for k in ("sentinel_username", "sentinel_password"):
        if k in q:
            sentinel_auth[k.removeprefix("sentinel_")] = q.pop(k)
    if q:
        raise ValueError(f"sentinel URL: unknown query parameters {sorted(q)}")
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        nodes, sentinel_kwargs={**sentinel_auth, **tls, **timeouts}, **auth, **tls, **timeouts
    )
    db = int(path[1]) if len(path) == 2 else 0
    client: redis.Redis = sentinel.master_for(path[0], db=db)  # type: ignore[no-untyped-call]
    return client

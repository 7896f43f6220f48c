"""jti replay caches: in-memory, and Redis when the optional client and a server are present."""

from __future__ import annotations

import importlib.util
import socket
import threading
import time
import uuid
from typing import Any

import pytest

from service.auth import MemoryReplayCache, RedisReplayCache, ReplayCache, ReplayCacheError
from tests.service.auth.helpers import FakeClock

REDIS_URL = "redis://127.0.0.1:6379/15"


def test_memory_cache_records_once(clock: FakeClock) -> None:
    cache = MemoryReplayCache(clock=clock)
    assert isinstance(cache, ReplayCache)
    assert cache.seen("iss", "a", clock.now + 60) is False
    assert cache.seen("iss", "a", clock.now + 60) is True
    assert cache.seen("other-iss", "a", clock.now + 60) is False  # keyed by (iss, jti)


def test_memory_cache_forgets_after_expiry(clock: FakeClock) -> None:
    cache = MemoryReplayCache(clock=clock)
    cache.seen("iss", "a", clock.now + 60)
    clock.advance(59)
    assert cache.seen("iss", "a", clock.now + 60) is True
    clock.advance(2)
    assert len(cache) == 0
    assert cache.seen("iss", "a", clock.now + 60) is False


def test_memory_cache_is_bounded_and_fails_closed(clock: FakeClock) -> None:
    cache = MemoryReplayCache(max_entries=3, clock=clock)
    for jti in "abc":
        cache.seen("iss", jti, clock.now + 10)
    with pytest.raises(ReplayCacheError):
        cache.seen("iss", "d", clock.now + 10)
    assert cache.seen("iss", "a", clock.now + 10) is True  # nothing live was evicted
    clock.advance(11)  # expired entries make room again
    assert cache.seen("iss", "d", clock.now + 10) is False


def test_memory_cache_is_atomic_across_threads() -> None:
    cache = MemoryReplayCache()
    results: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def use() -> None:
        barrier.wait()
        r = cache.seen("iss", "same", time.time() + 60)
        with lock:
            results.append(r)

    threads = [threading.Thread(target=use) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] + [True] * 15


class _FailingRedis:
    def set(self, name: str, value: bytes, *, nx: bool, px: int) -> Any:
        raise ConnectionError("redis is down")


def test_redis_cache_fails_closed_on_client_errors() -> None:
    with pytest.raises(ReplayCacheError):
        RedisReplayCache(_FailingRedis()).seen("iss", "a", time.time() + 60)


def test_redis_keys_do_not_contain_the_raw_jti() -> None:
    cache = RedisReplayCache(_FailingRedis(), prefix="p:")
    key = cache.key_for("iss", "jti\r\nFLUSHALL")
    assert key.startswith("p:")
    assert len(key) == 2 + 64
    assert cache.key_for("iss", "\ud800") != key  # lone surrogates do not crash


@pytest.mark.skipif(
    importlib.util.find_spec("redis") is not None, reason="the redis package is installed"
)
def test_redis_from_url_without_the_package_says_so() -> None:
    with pytest.raises(RuntimeError, match="redis"):
        RedisReplayCache.from_url(REDIS_URL)


def _redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.fixture
def redis_cache() -> RedisReplayCache:
    pytest.importorskip(
        "redis",
        reason="redis-py is not installed (optional); RedisReplayCache not tested against Redis",
    )
    if not _redis_reachable():
        pytest.skip("no Redis server at 127.0.0.1:6379; RedisReplayCache not tested against Redis")
    return RedisReplayCache.from_url(REDIS_URL, prefix=f"test-{uuid.uuid4()}:")


def test_redis_cache_records_once_with_expiry(redis_cache: RedisReplayCache) -> None:
    now = time.time()
    assert redis_cache.seen("iss", "a", now + 60) is False
    assert redis_cache.seen("iss", "a", now + 60) is True
    assert redis_cache.seen("iss2", "a", now + 60) is False
    assert redis_cache.seen("iss", "short", time.time() + 0.2) is False
    time.sleep(0.4)
    assert redis_cache.seen("iss", "short", time.time() + 60) is False


def test_redis_cache_is_atomic_across_threads(redis_cache: RedisReplayCache) -> None:
    results: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def use() -> None:
        barrier.wait()
        r = redis_cache.seen("iss", "same", time.time() + 60)
        with lock:
            results.append(r)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] + [True] * 7


def test_redis_unreachable_fails_closed() -> None:
    pytest.importorskip("redis", reason="redis-py is not installed (optional)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cache = RedisReplayCache.from_url(f"redis://127.0.0.1:{port}/0", timeout_s=0.2)
    with pytest.raises(ReplayCacheError):
        cache.seen("iss", "a", time.time() + 60)

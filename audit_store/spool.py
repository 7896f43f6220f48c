"""The audit spool: an append-only JSON-lines file per process, used while the database is down.

Writing. Each line is ``{"kind": ..., "record": {...}}``. An append takes an exclusive
``flock`` on the file, checks that the path still names the file it opened (a replayer may
have claimed it), writes the whole line, ``fsync``s it (and the directory when the file is new),
and only then returns: a spooled record is as durable as a committed one. A file left by a
crash mid-write (no final newline) gets a newline before the next line, so the torn fragment
cannot swallow a good record. A failed write is truncated away.

Replaying. A replayer claims a spool file by renaming it (under its lock) to a
``*.replaying`` name, so writers move on to a fresh file, and holds the lock while it works.
It parses every line, hands the good records to the sink in batches (the sink inserts with
``ON CONFLICT DO NOTHING``, so a record already in the database is skipped, not duplicated),
and finally writes what it could not store to new files with ``fsync`` + atomic rename:
records left because the database failed again go back to the spool; lines that do not parse
(a torn last line) or that the database rejects go to ``quarantine/``, reported in the log and
in :class:`ReplayReport`, never dropped. Only then is the claimed file removed. A crash at any
point leaves the claimed file in place; the next replay (in any process, once the claimer's
lock is gone) takes it up again, and the unique keys absorb the repeats.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final

import structlog

from audit_store.records import AuditRecord, kind_of, record_from_dict

log = structlog.get_logger(__name__)

LIVE_GLOB: Final = "audit-*.jsonl"
CLAIM_SUFFIX: Final = ".replaying"
QUARANTINE: Final = "quarantine"
_BATCH: Final = 200
_MAX_OPEN_ATTEMPTS: Final = 1000


class TransientSinkError(Exception):
    """The database failed in a way worth retrying later: stop replaying, keep the rest."""


#: Stores a batch; returns how many were new (the rest were already stored). Raises
#: TransientSinkError when the database is unavailable, anything else when it rejects a record.
Sink = Callable[[Sequence[AuditRecord]], int]


@dataclass
class ReplayReport:
    """What one :meth:`Spool.replay` did. ``problems``: (file, line number, reason)."""

    replayed: int = 0
    duplicates: int = 0
    kept: int = 0
    quarantined: int = 0
    files: int = 0
    stopped_early: bool = False
    problems: list[tuple[str, int, str]] = field(default_factory=list)


@dataclass
class _Line:
    number: int
    raw: bytes
    record: AuditRecord | None = None
    problem: str | None = None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _write_durably(path: Path, lines: Iterable[bytes]) -> int:
    """Write ``lines`` to ``path`` atomically (temp file, fsync, rename, fsync directory);
    returns how many were written. Nothing is created when there are none."""
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    count = 0
    try:
        for line in lines:
            _write_all(fd, line.rstrip(b"\n") + b"\n")
            count += 1
        os.fsync(fd)
    finally:
        os.close(fd)
    if count:
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    else:
        tmp.unlink()
    return count


def _count_newlines(path: Path, start: int) -> int:
    count = 0
    with path.open("rb") as fh:
        fh.seek(start)
        while chunk := fh.read(1 << 20):
            count += chunk.count(b"\n")
    return count


def encode(record: AuditRecord) -> bytes:
    entry = {"kind": kind_of(record), "record": record.to_dict()}
    return json.dumps(entry, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8") + b"\n"


def decode(raw: bytes) -> AuditRecord:
    entry: Any = json.loads(raw)
    if not isinstance(entry, dict) or not isinstance(entry.get("record"), dict):
        raise ValueError("not a spool entry")
    return record_from_dict(str(entry.get("kind")), entry["record"])


class Spool:
    """Durable per-process spool files under ``directory`` (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.quarantine_dir = self.directory / QUARANTINE
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        self._host = "".join(c if c.isalnum() or c in "-_" else "_"
                             for c in socket.gethostname())[:64] or "host"
        self._write_lock = threading.Lock()
        self._replay_lock = threading.Lock()
        self._count_cache: dict[Path, tuple[int, int, int]] = {}

    # -- writing ----------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """This process's spool file (the pid is read now, so a forked worker gets its own)."""
        return self.directory / f"audit-{self._host}-{os.getpid()}.jsonl"

    def append(self, record: AuditRecord) -> None:
        """Append one record and fsync it; raises ``OSError`` if it could not be made durable."""
        data = encode(record)
        with self._write_lock:
            fd = self._open_locked()
            try:
                size = os.fstat(fd).st_size
                prefix = b""
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    prefix = b"\n"  # a torn line from a crash: never glue a record onto it
                try:
                    _write_all(fd, prefix + data)
                    os.fsync(fd)
                except OSError:
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, size)
                    raise
                if size == 0:
                    _fsync_dir(self.directory)
            finally:
                os.close(fd)  # releases the flock

    def _open_locked(self) -> int:
        for _ in range(_MAX_OPEN_ATTEMPTS):
            path = self.path
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)  # a replayer is claiming it: it is renamed in a moment
                time.sleep(0.001)
                continue
            except BaseException:
                os.close(fd)
                raise
            if _same_file(fd, path):
                return fd
            os.close(fd)  # claimed between open and lock: open the new file
        raise OSError(errno.EAGAIN, "audit spool file stayed locked")

    # -- inspecting -------------------------------------------------------------------------

    def pending_files(self) -> list[Path]:
        return sorted([*self.directory.glob(LIVE_GLOB),
                       *self.directory.glob("*" + CLAIM_SUFFIX)])

    def quarantine_files(self) -> list[Path]:
        return sorted(self.quarantine_dir.glob("*.jsonl"))

    def depth(self) -> int:
        """Records waiting to be replayed (lines in live and claimed spool files)."""
        return self._count(self.pending_files())

    def quarantine_depth(self) -> int:
        """Lines held in quarantine for a person to look at."""
        return self._count(self.quarantine_files())

    def _count(self, paths: Sequence[Path]) -> int:
        total = 0
        cache: dict[Path, tuple[int, int, int]] = {}
        for path in paths:
            try:
                st = os.stat(path)
                ino, size, lines = self._count_cache.get(path, (st.st_ino, 0, 0))
                if ino != st.st_ino or size > st.st_size:
                    size, lines = 0, 0
                if st.st_size > size:
                    lines += _count_newlines(path, size)
                    size = st.st_size
            except FileNotFoundError:
                continue
            cache[path] = (st.st_ino, size, lines)
            total += lines + (1 if size and not self._ends_with_newline(path, size) else 0)
        self._count_cache = cache
        return total

    @staticmethod
    def _ends_with_newline(path: Path, size: int) -> bool:
        try:
            with path.open("rb") as fh:
                fh.seek(size - 1)
                return fh.read(1) == b"\n"
        except OSError:
            return True

    # -- replaying --------------------------------------------------------------------------

    def replay(self, sink: Sink) -> ReplayReport:
        """Move every spooled record through ``sink`` (see the module docstring)."""
        report = ReplayReport()
        with self._replay_lock:
            for path in self.pending_files():
                with self._claimed(path) as claimed:
                    if claimed is None:
                        continue
                    report.files += 1
                    self._replay_file(claimed, sink, report)
                if report.stopped_early:
                    break
        if report.problems:
            log.warning("audit.spool.problems", count=len(report.problems),
                        quarantined=report.quarantined, where=report.problems[:20])
        return report

    @contextlib.contextmanager
    def _claimed(self, path: Path) -> Iterator[Path | None]:
        """Lock ``path`` and, for a live file, rename it to a claim; None if someone has it."""
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            yield None
            return
        try:
            live = not path.name.endswith(CLAIM_SUFFIX)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if live else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield None  # another replayer (alive: it holds the lock) is on it
                return
            if not _same_file(fd, path):
                yield None
                return
            if live:
                claim = path.with_name(f"{path.name}.{uuid.uuid4().hex[:12]}{CLAIM_SUFFIX}")
                os.rename(path, claim)
                _fsync_dir(self.directory)
                path = claim
            yield path
        finally:
            os.close(fd)

    def _replay_file(self, path: Path, sink: Sink, report: ReplayReport) -> None:
        """Stream ``path`` through the sink in batches (a long outage can spool a lot)."""
        claim_id = path.name.removesuffix(CLAIM_SUFFIX).rsplit(".", 1)[-1]
        bad: list[_Line] = []
        with path.open("rb") as fh:
            lines = self._parse(fh, bad)
            while batch := list(itertools.islice(lines, _BATCH)):
                try:
                    new = self._store_batch(batch, sink, bad)
                except TransientSinkError:
                    report.stopped_early = True
                    rest = itertools.chain((b for b in batch if b.problem is None), lines)
                    # Back to the spool, under a fixed-length name derived from the claim.
                    report.kept += _write_durably(
                        self.directory / f"audit-kept-{claim_id}.jsonl",
                        (line.raw for line in rest))
                    break
                report.replayed += new
                report.duplicates += sum(1 for b in batch if b.problem is None) - new
        for line in bad:
            report.problems.append((path.name, line.number, line.problem or "unreadable"))
        if bad:
            report.quarantined += _write_durably(self.quarantine_dir / f"{claim_id}.jsonl",
                                                 [b.raw for b in bad])
        path.unlink()
        _fsync_dir(self.directory)

    @staticmethod
    def _store_batch(batch: list[_Line], sink: Sink, bad: list[_Line]) -> int:
        try:
            return sink([line.record for line in batch if line.record is not None])
        except TransientSinkError:
            raise
        except Exception:  # the database rejects something in the batch: find what
            pass
        new = 0
        for line in batch:
            if line.record is None:
                continue
            try:
                new += sink([line.record])
            except TransientSinkError:
                raise
            except Exception as exc:  # rejected for good: quarantine, never drop
                line.problem = f"rejected by the database: {type(exc).__name__}"
                bad.append(line)
        return new

    @staticmethod
    def _parse(fh: BinaryIO, bad: list[_Line]) -> Iterator[_Line]:
        """The readable lines of a spool file; unreadable ones are appended to ``bad``."""
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            line = _Line(number, raw)
            try:
                line.record = decode(raw)
            except Exception as exc:  # any unreadable line is quarantined, never dropped
                torn = not raw.endswith(b"\n")  # only the last line can lack one
                line.problem = f"{'truncated last line' if torn else 'bad line'}: " \
                               f"{type(exc).__name__}"
                bad.append(line)
                continue
            yield line

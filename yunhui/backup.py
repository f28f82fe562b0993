"""Backups: the database, the meeting files and the recordings in one checked tar archive.

An archive holds ``database/yunhui.db`` (SQLite's online backup API: consistent while the server writes)
or ``database/yunhui.dump`` (``pg_dump --format=custom``), ``files/…`` and ``recordings/…``, and last
``manifest.json``: the schema revision, when and by which version it was made, and the SHA-256 and size of
every other member. Restore verifies every checksum before it touches the target, and refuses an archive of a
schema revision this code does not know (a newer one).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path, PurePosixPath
from typing import IO

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import URL, make_url

from rooms.database import alembic_config
from yunhui.settings import Settings

log = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_MEMBER = "database/yunhui.db"
PG_MEMBER = "database/yunhui.dump"
SCHEDULED_PREFIX = "yunhui-backup-"
UPGRADE_PREFIX = "yunhui-pre-upgrade-"
SUFFIX = ".tar.gz"
CHUNK = 1 << 20


class BackupError(Exception):
    """A backup or restore cannot be done; the message is one line for the operator."""


@dataclass(frozen=True)
class Member:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    format: int
    created_at: str
    schema_revision: str | None
    database: str  # sqlite or postgresql
    yunhui_version: str
    members: tuple[Member, ...]

    def to_json(self) -> bytes:
        data = {
            "format": self.format,
            "created_at": self.created_at,
            "schema_revision": self.schema_revision,
            "database": self.database,
            "versions": {"yunhui": self.yunhui_version},
            "members": {m.name: {"size": m.size, "sha256": m.sha256} for m in self.members},
        }
        return json.dumps(data, indent=2, sort_keys=True).encode()

    @classmethod
    def parse(cls, raw: bytes) -> Manifest:
        try:
            data = json.loads(raw)
            members = tuple(
                Member(str(name), int(m["size"]), str(m["sha256"])) for name, m in data["members"].items()
            )
            return cls(
                format=int(data["format"]),
                created_at=str(data["created_at"]),
                schema_revision=data["schema_revision"],
                database=str(data["database"]),
                yunhui_version=str(data["versions"]["yunhui"]),
                members=members,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BackupError(f"the archive's manifest is unreadable ({exc})") from None


@dataclass(frozen=True)
class Target:
    """Where a backup is read from and a restore writes to: the database and two directories."""

    database_url: str
    files_dir: Path
    recordings_dir: Path

    @classmethod
    def of(cls, settings: Settings) -> Target:
        var_dir = settings.paths.var_dir
        files = settings.signaling.files_dir or var_dir / "files"
        return cls(settings.database_url, files, var_dir / "recordings")

    @property
    def url(self) -> URL:
        return make_url(self.database_url)

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def sqlite_path(self) -> Path:
        if not self.url.database or self.url.database == ":memory:":
            raise BackupError("an in-memory SQLite database cannot be backed up")
        return Path(self.url.database)


def archive_name(prefix: str, now: dt.datetime) -> str:
    return f"{prefix}{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}{SUFFIX}"


def head_revisions() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def known_revision(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


# --- making an archive -------------------------------------------------------------------------------


class _Hashing(io.RawIOBase):
    """A reader that hashes what passes through it (tarfile reads a member's bytes from it once)."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._source.read(size)
        self.digest.update(chunk)
        return chunk


def _add(tar: tarfile.TarFile, path: Path, name: str, members: list[Member]) -> None:
    try:
        source = path.open("rb")
    except FileNotFoundError:  # removed (e.g. by the retention sweep) since the directory was listed
        return
    with source:
        info = tarfile.TarInfo(name)
        info.size = os.fstat(source.fileno()).st_size
        info.mtime = int(os.fstat(source.fileno()).st_mtime)
        info.mode = 0o640
        hashing = _Hashing(source)
        tar.addfile(info, hashing)
        members.append(Member(name, info.size, hashing.digest.hexdigest()))


def _tree(root: Path) -> Iterator[tuple[Path, str]]:
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*")):
        # A .part is an upload still being written; it is not a file of the meeting yet.
        if path.is_file() and not path.is_symlink() and path.suffix != ".part":
            yield path, path.relative_to(root).as_posix()


def _sqlite_snapshot(source: Path, destination: Path) -> str | None:
    """Copy with the online backup API (readers and the writer go on meanwhile); the copy's revision."""
    if not source.exists():
        raise BackupError(f"no database at {source}")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(destination)
    try:
        src.backup(dst)
        return _sqlite_revision(dst)
    finally:
        dst.close()
        src.close()


def _sqlite_revision(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return None
    return None if row is None else str(row[0])


def _pg_args(url: URL) -> tuple[list[str], dict[str, str]]:
    """libpq options for a SQLAlchemy URL; the password travels in the environment, never in argv."""
    args = ["--host", url.host or "127.0.0.1", "--port", str(url.port or 5432)]
    if url.username:
        args += ["--username", url.username]
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return args, env


def _run_tool(argv: list[str], env: dict[str, str]) -> None:
    if shutil.which(argv[0]) is None:
        raise BackupError(f"{argv[0]} is not installed (Debian: postgresql-client)")
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise BackupError(f"{argv[0]} failed: {last}")


def _pg_revision(url: URL) -> str | None:
    args, env = _pg_args(url)
    argv = [
        "psql",
        *args,
        "--dbname",
        url.database or "",
        "-At",
        "-c",
        "SELECT version_num FROM alembic_version",
    ]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    return done.stdout.strip() or None if done.returncode == 0 else None


def create_backup(
    target: Target, directory: Path, *, now: dt.datetime, prefix: str = SCHEDULED_PREFIX
) -> Path:
    """Write one archive into ``directory`` and return its path (blocking: run it in a thread)."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / archive_name(prefix, now)
    members: list[Member] = []
    with tempfile.TemporaryDirectory(dir=directory, prefix=".backup-") as scratch:
        partial = Path(scratch) / final.name
        dump = Path(scratch) / "database"
        if target.is_sqlite:
            revision = _sqlite_snapshot(target.sqlite_path, dump)
            database, member = "sqlite", SQLITE_MEMBER
        else:
            url = target.url
            revision = _pg_revision(url)
            args, env = _pg_args(url)
            _run_tool(
                ["pg_dump", *args, "--format=custom", "--no-owner", "--file", str(dump), url.database or ""],
                env,
            )
            database, member = "postgresql", PG_MEMBER
        with tarfile.open(partial, "w:gz") as tar:
            _add(tar, dump, member, members)
            for path, name in _tree(target.files_dir):
                _add(tar, path, f"files/{name}", members)
            for path, name in _tree(target.recordings_dir):
                _add(tar, path, f"recordings/{name}", members)
            manifest = Manifest(
                FORMAT,
                now.astimezone(dt.UTC).isoformat(),
                revision,
                database,
                version("yunhui"),
                tuple(members),
            )
            raw = manifest.to_json()
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(raw)
            info.mtime = int(now.timestamp())
            tar.addfile(info, io.BytesIO(raw))
        # The archive appears under its name only once complete: a crash leaves no half archive behind.
        os.replace(partial, final)
    log.info("backup written: %s (%d members, schema %s)", final, len(members), revision)
    return final


# --- restoring ---------------------------------------------------------------------------------------


def _safe_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise BackupError(f"the archive holds an unsafe member name {name!r}")
    return path


def read_manifest(archive: Path) -> Manifest:
    try:
        with tarfile.open(archive, "r:*") as tar:
            try:
                raw = tar.extractfile(MANIFEST)
            except KeyError:
                raise BackupError(f"{archive.name} is not a Yunhui backup (no {MANIFEST})") from None
            if raw is None:
                raise BackupError(f"{archive.name}: {MANIFEST} is not a file")
            return Manifest.parse(raw.read())
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError(f"{archive.name} is damaged or not an archive ({exc})") from None


def check_compatible(manifest: Manifest) -> None:
    if manifest.format != FORMAT:
        raise BackupError(f"archive format {manifest.format} is not supported (this Yunhui reads {FORMAT})")
    revision = manifest.schema_revision
    if revision is not None and not known_revision(revision):
        heads = ", ".join(sorted(head_revisions()))
        raise BackupError(
            f"the archive's schema revision {revision} is newer than this Yunhui's ({heads}): "
            f"install Yunhui {manifest.yunhui_version} or later to restore it"
        )


def extract_verified(archive: Path, manifest: Manifest, into: Path) -> None:
    """Extract every member into ``into``, hashing as it goes; any mismatch, gap or extra member fails."""
    expected = {m.name: m for m in manifest.members}
    seen: set[str] = set()
    try:
        with tarfile.open(archive, "r:*") as tar:
            for info in tar:
                if info.name == MANIFEST:
                    continue
                if not info.isfile():
                    raise BackupError(f"the archive holds {info.name!r}, which is not a regular file")
                want = expected.get(info.name)
                if want is None:
                    raise BackupError(f"the archive holds {info.name!r}, which its manifest does not list")
                path = into / _safe_name(info.name)
                path.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(info)
                assert source is not None
                digest = hashlib.sha256()
                with path.open("wb") as out:
                    while chunk := source.read(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                if digest.hexdigest() != want.sha256 or info.size != want.size:
                    raise BackupError(f"checksum mismatch for {info.name}: the archive is corrupt")
                seen.add(info.name)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise BackupError(f"{archive.name} is damaged ({exc})") from None
    missing = sorted(set(expected) - seen)
    if missing:
        raise BackupError(f"the archive lacks {missing[0]} (listed in its manifest): it is incomplete")


def _not_empty(directory: Path) -> bool:
    return directory.is_dir() and any(directory.iterdir())


def _sqlite_has_data(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return False
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        (count,) = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()
    except sqlite3.DatabaseError:
        return True
    finally:
        conn.close()
    return bool(count)


def _pg_has_data(url: URL) -> bool:
    args, env = _pg_args(url)
    query = "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
    argv = ["psql", *args, "--dbname", url.database or "", "-At", "-c", query]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"cannot reach the target database: {done.stderr.strip().splitlines()[-1:]}")
    return int(done.stdout.strip() or 0) > 0


def _replace_dir(staged: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    if staged.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staged), str(target))


def restore_backup(archive: Path, target: Target, *, force: bool = False) -> Manifest:
    """Restore an archive into ``target``; nothing is changed unless every check passes first."""
    manifest = read_manifest(archive)
    check_compatible(manifest)
    kind = "sqlite" if target.is_sqlite else "postgresql"
    if manifest.database != kind:
        raise BackupError(f"the archive holds a {manifest.database} database; the target is {kind}")
    if not force:
        occupied = [
            name
            for name, busy in (
                (
                    "the database",
                    _sqlite_has_data(target.sqlite_path) if target.is_sqlite else _pg_has_data(target.url),
                ),
                (str(target.files_dir), _not_empty(target.files_dir)),
                (str(target.recordings_dir), _not_empty(target.recordings_dir)),
            )
            if busy
        ]
        if occupied:
            raise BackupError(
                f"{occupied[0]} is not empty: restore into a fresh data directory, or pass --force"
            )
    staging_root = target.files_dir.parent
    staging_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=staging_root, prefix=".restore-") as scratch:
        staged = Path(scratch)
        extract_verified(archive, manifest, staged)
        if target.is_sqlite:
            db = target.sqlite_path
            db.parent.mkdir(parents=True, exist_ok=True)
            # A stale WAL beside the new file would be replayed into it.
            for stale in (Path(f"{db}-wal"), Path(f"{db}-shm")):
                stale.unlink(missing_ok=True)
            os.replace(staged / SQLITE_MEMBER, db)
        else:
            url = target.url
            args, env = _pg_args(url)
            _run_tool(
                [
                    "pg_restore", *args, "--dbname", url.database or "", "--clean", "--if-exists",
                    "--no-owner", "--exit-on-error", "--single-transaction", str(staged / PG_MEMBER),
                ],
                env,
            )  # fmt: skip
        _replace_dir(staged / "files", target.files_dir)
        _replace_dir(staged / "recordings", target.recordings_dir)
    log.info("restored %s (schema %s, made %s)", archive, manifest.schema_revision, manifest.created_at)
    return manifest

"""Shared files: signed links, storage under the meeting, content sniffing and retention."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import shutil
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

FILE_ID = re.compile(r"^[0-9a-f]{16}$")

_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"%PDF-", 0, "application/pdf"),
    (b"PK\x03\x04", 0, "application/zip"),
    (b"\x1f\x8b", 0, "application/gzip"),
    (b"7z\xbc\xaf\x27\x1c", 0, "application/x-7z-compressed"),
    (b"\x1aE\xdf\xa3", 0, "video/webm"),
    (b"OggS", 0, "audio/ogg"),
    (b"ID3", 0, "audio/mpeg"),
    (b"ftyp", 4, "video/mp4"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 0, "application/x-ole-storage"),
)


def sniff(head: bytes) -> str:
    """The content type of a file from its first bytes; never trusts the uploader's claim."""
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    for magic, offset, content_type in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return content_type
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        if exc.start < len(head) - 3:
            return "application/octet-stream"
    if b"\x00" in head:
        return "application/octet-stream"
    return "text/plain; charset=utf-8"


def safe_name(name: str) -> str:
    """A display file name without paths or control characters."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip().lstrip(".")
    return name[:200] or "file"


class FileLinks:
    """Signed, expiring upload and download links, each bound to one participant of one meeting."""

    def __init__(self, secret_key: str, *, prefix: str, ttl: timedelta) -> None:
        self._key = hashlib.sha256(b"yunhui-files\n" + secret_key.encode()).digest()
        self._prefix = prefix.rstrip("/")
        self._ttl = ttl

    def _sign(self, *parts: str) -> str:
        mac = hmac.new(self._key, "\n".join(parts).encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:24]).decode()

    def _query(self, purpose: str, meeting_id: int, subject: str, participant_id: str, now: datetime) -> str:
        expires = str(int((now + self._ttl).timestamp()))
        sig = self._sign(purpose, str(meeting_id), subject, participant_id, expires)
        return urlencode({"p": participant_id, "e": expires, "s": sig})

    def upload_url(self, meeting_id: int, participant_id: str, now: datetime) -> str:
        return f"{self._prefix}/{meeting_id}?{self._query('upload', meeting_id, '', participant_id, now)}"

    def download_url(self, meeting_id: int, file_id: str, participant_id: str, now: datetime) -> str:
        query = self._query("download", meeting_id, file_id, participant_id, now)
        return f"{self._prefix}/{meeting_id}/{file_id}?{query}"

    def verify(
        self, purpose: str, meeting_id: int, subject: str, query: dict[str, str], now: datetime
    ) -> str:
        """The participant id a link was issued to; raises ValueError if forged or expired."""
        participant_id, expires, sig = query.get("p", ""), query.get("e", ""), query.get("s", "")
        if not expires.isdigit():
            raise ValueError("the link is malformed")
        expected = self._sign(purpose, str(meeting_id), subject, participant_id, expires)
        if not hmac.compare_digest(expected.encode(), sig.encode()):
            raise ValueError("the link's signature is wrong")
        if int(expires) < now.timestamp():
            raise ValueError("the link has expired")
        return participant_id


@dataclass(frozen=True, slots=True)
class StoredFile:
    file_id: str
    meeting_id: int
    name: str
    size: int
    content_type: str
    uploader_id: str
    uploaded_at: datetime
    path: Path


class FileTooLarge(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Usage:
    """Files and bytes: of one uploader, or of a meeting (``TOTAL``)."""

    files: int = 0
    bytes: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.files + other.files, self.bytes + other.bytes)


TOTAL = ""  # the usage key of the whole meeting (participant ids are never empty)


@dataclass(frozen=True, slots=True)
class Quota:
    """At most ``files`` files of at most ``bytes`` bytes in all, kept at once."""

    files: int
    bytes: int


def quota_problem(
    usage: Mapping[str, Usage], uploader: str, *, participant: Quota, meeting: Quota, adding: Usage
) -> tuple[str, str] | None:
    """(code, message) if ``uploader`` adding ``adding`` would pass a quota: ``too_many_files`` (a count)
    or ``quota_exceeded`` (bytes); None if it fits. Pure: ``usage`` is kept files plus uploads under way."""
    mine = usage.get(uploader, Usage()) + adding
    everyone = usage.get(TOTAL, Usage()) + adding
    if mine.files > participant.files:
        return "too_many_files", f"you may share at most {participant.files} files in this meeting"
    if everyone.files > meeting.files:
        return "too_many_files", f"this meeting already holds its {meeting.files} shared files"
    if mine.bytes > participant.bytes:
        return "quota_exceeded", f"your shared files may take at most {participant.bytes} bytes in all"
    if everyone.bytes > meeting.bytes:
        return "quota_exceeded", f"this meeting's shared files may take at most {meeting.bytes} bytes in all"
    return None


class UploadLedger:
    """Uploads under way, so that parallel uploads cannot each pass a quota that together they exceed."""

    def __init__(self) -> None:
        self._open: dict[int, dict[int, tuple[str, int]]] = {}  # meeting -> upload -> (uploader, bytes)
        self._next = 0

    def open(self, meeting_id: int, uploader: str) -> int:
        self._next += 1
        self._open.setdefault(meeting_id, {})[self._next] = (uploader, 0)
        return self._next

    def grow(self, meeting_id: int, upload: int, size: int) -> None:
        uploader, _ = self._open[meeting_id][upload]
        self._open[meeting_id][upload] = (uploader, size)

    def close(self, meeting_id: int, upload: int) -> None:
        uploads = self._open.get(meeting_id, {})
        uploads.pop(upload, None)
        if not uploads:
            self._open.pop(meeting_id, None)

    def usage(self, meeting_id: int, *, besides: int | None = None) -> dict[str, Usage]:
        """Usage of the uploads under way in a meeting (each counts as a file), ``besides`` one of them."""
        return add_usage(
            {}, [(u, size) for n, (u, size) in self._open.get(meeting_id, {}).items() if n != besides]
        )


def add_usage(usage: Mapping[str, Usage], files: Iterable[tuple[str, int]]) -> dict[str, Usage]:
    """``usage`` plus (uploader, size) files, per uploader and in ``TOTAL``."""
    out = dict(usage)
    for uploader, size in files:
        one = Usage(1, size)
        out[uploader] = out.get(uploader, Usage()) + one
        out[TOTAL] = out.get(TOTAL, Usage()) + one
    return out


class FileStore:
    """Files under ``root/<meeting_id>/``: ``<file_id>`` holds the bytes, ``<file_id>.json`` the metadata.

    Methods do blocking file I/O; callers run them in a thread.
    """

    def __init__(self, root: Path) -> None:
        self._root = root

    def create(self, meeting_id: int) -> tuple[str, Path]:
        """A fresh file id and the path to write its bytes to (a partial file until ``commit``)."""
        folder = self._root / str(meeting_id)
        folder.mkdir(parents=True, exist_ok=True)
        file_id = secrets.token_hex(8)
        return file_id, folder / f"{file_id}.part"

    def commit(
        self, meeting_id: int, file_id: str, *, name: str, uploader_id: str, now: datetime
    ) -> StoredFile:
        folder = self._root / str(meeting_id)
        part, final = folder / f"{file_id}.part", folder / file_id
        with part.open("rb") as f:
            content_type = sniff(f.read(4096))
        part.rename(final)
        stored = StoredFile(
            file_id, meeting_id, safe_name(name), final.stat().st_size, content_type, uploader_id, now, final
        )
        meta = {
            "name": stored.name,
            "size": stored.size,
            "content_type": content_type,
            "uploader_id": uploader_id,
            "uploaded_at": now.isoformat(),
        }
        (folder / f"{file_id}.json").write_text(json.dumps(meta), encoding="utf-8")
        return stored

    def lookup(self, meeting_id: int, file_id: str) -> StoredFile | None:
        if not FILE_ID.match(file_id):
            return None
        folder = self._root / str(meeting_id)
        try:
            meta = json.loads((folder / f"{file_id}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return StoredFile(
            file_id,
            meeting_id,
            str(meta["name"]),
            int(meta["size"]),
            str(meta["content_type"]),
            str(meta["uploader_id"]),
            datetime.fromisoformat(meta["uploaded_at"]),
            folder / file_id,
        )

    def usage(self, meeting_id: int) -> dict[str, Usage]:
        """The kept files of a meeting, per uploader and in ``TOTAL``."""
        folder = self._root / str(meeting_id)
        if not folder.is_dir():
            return {}
        kept = (self.lookup(meeting_id, meta.stem) for meta in folder.glob("*.json"))
        return add_usage({}, ((f.uploader_id, f.size) for f in kept if f is not None))

    def sweep(self, now: datetime, retention: timedelta) -> int:
        """Remove files uploaded ``retention`` ago or earlier, and empty folders; returns the count."""
        removed = 0
        if not self._root.is_dir():
            return 0
        for folder in self._root.iterdir():
            if not folder.is_dir() or not folder.name.isdigit():
                continue
            for meta_path in folder.glob("*.json"):
                stored = self.lookup(int(folder.name), meta_path.stem)
                if stored is None or now - stored.uploaded_at >= retention:
                    meta_path.unlink(missing_ok=True)
                    (folder / meta_path.stem).unlink(missing_ok=True)
                    removed += 1
            for part in folder.glob("*.part"):
                if now.timestamp() - part.stat().st_mtime >= retention.total_seconds():
                    part.unlink(missing_ok=True)
            if not any(folder.iterdir()):
                shutil.rmtree(folder, ignore_errors=True)
        return removed

    def discard(self, path: Path) -> None:
        path.unlink(missing_ok=True)

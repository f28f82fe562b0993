"""What restore refuses (a newer schema, a corrupt or truncated archive, unsafe names), the schedule with
its retention, and the backup that a migration takes first."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command

from rooms.database import Database, alembic_config
from tests.operations.backup_scene import tree_digest
from yunhui.backup import (
    MANIFEST,
    UPGRADE_PREFIX,
    BackupError,
    Target,
    create_backup,
    read_manifest,
    restore_backup,
)
from yunhui.backup_jobs import archives, due, scheduled_backup, upgrade_with_backup
from yunhui.settings import Settings, load_settings

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def _settings(var_dir: Path, **backup: object) -> Settings:
    return load_settings(overrides={"paths": {"var_dir": str(var_dir)}, "backup": backup})


@pytest.fixture
async def archive(tmp_path: Path) -> Path:
    settings = _settings(tmp_path / "src")
    database = await Database.connect(settings.database_url)
    await database.upgrade()
    await database.close()
    (tmp_path / "src" / "files" / "7").mkdir(parents=True)
    (tmp_path / "src" / "files" / "7" / "abc").write_bytes(b"minutes of the meeting")
    (tmp_path / "src" / "files" / "7" / "def.part").write_bytes(b"an upload still arriving")
    (tmp_path / "src" / "recordings" / "7").mkdir(parents=True)
    (tmp_path / "src" / "recordings" / "7" / "audio.webm").write_bytes(b"\x1a\x45\xdf\xa3" * 64)
    return create_backup(Target.of(settings), tmp_path / "out", now=NOW)


def _rewrite(
    archive: Path,
    out: Path,
    *,
    manifest: dict[str, object] | None = None,
    replace: dict[str, bytes] | None = None,
    extra: dict[str, bytes] | None = None,
) -> Path:
    """A copy of ``archive`` with the manifest or members changed (the way damage or tampering would)."""
    with tarfile.open(archive) as src, tarfile.open(out, "w:gz") as dst:
        for info in src:
            data = src.extractfile(info).read()  # type: ignore[union-attr]
            if info.name == MANIFEST and manifest is not None:
                data = json.dumps({**json.loads(data), **manifest}).encode()
            if replace and info.name in replace:
                data = replace[info.name]
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    return out


def test_the_archive_lists_every_member_with_its_checksum(archive: Path) -> None:
    manifest = read_manifest(archive)
    names = {m.name for m in manifest.members}
    assert names == {"database/yunhui.db", "files/7/abc", "recordings/7/audio.webm"}  # no .part
    assert manifest.database == "sqlite" and manifest.schema_revision is not None
    assert manifest.created_at == NOW.isoformat()
    assert archive.name == "yunhui-backup-20261203T090000Z.tar.gz"


def test_restore_drill_into_a_fresh_directory(archive: Path, tmp_path: Path) -> None:
    restore_backup(archive, Target.of(_settings(tmp_path / "fresh")))
    source = tree_digest(tmp_path / "src" / "files")
    del source["7/def.part"]  # an unfinished upload is not a file of the meeting
    assert tree_digest(tmp_path / "fresh" / "files") == source
    assert tree_digest(tmp_path / "fresh" / "recordings") == tree_digest(tmp_path / "src" / "recordings")


def test_a_newer_schema_is_refused_before_anything_is_written(archive: Path, tmp_path: Path) -> None:
    newer = _rewrite(archive, tmp_path / "newer.tar.gz", manifest={"schema_revision": "0999"})
    fresh = tmp_path / "fresh"
    with pytest.raises(BackupError) as refused:
        restore_backup(newer, Target.of(_settings(fresh)))
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("the archive's schema revision 0999 is newer than this Yunhui's (")
    assert not (fresh / "yunhui.db").exists() and not (fresh / "files").exists()


def test_a_corrupted_member_is_refused(archive: Path, tmp_path: Path) -> None:
    damaged = _rewrite(
        archive, tmp_path / "damaged.tar.gz", replace={"files/7/abc": b"minutes of the meetinG"}
    )
    fresh = tmp_path / "fresh"
    with pytest.raises(BackupError, match="checksum mismatch for files/7/abc: the archive is corrupt"):
        restore_backup(damaged, Target.of(_settings(fresh)))
    assert not (fresh / "yunhui.db").exists() and not (fresh / "files").exists()


def test_a_truncated_archive_is_refused(archive: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(BackupError, match="is damaged"):
        restore_backup(truncated, Target.of(_settings(tmp_path / "fresh")))


def test_members_the_manifest_does_not_list_are_refused(archive: Path, tmp_path: Path) -> None:
    extra = _rewrite(archive, tmp_path / "extra.tar.gz", extra={"files/../../etc/cron.d/x": b"boom"})
    with pytest.raises(BackupError, match="which its manifest does not list"):
        restore_backup(extra, Target.of(_settings(tmp_path / "fresh")))
    assert not (tmp_path / "etc").exists()


def test_not_an_archive(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tar file")
    with pytest.raises(BackupError, match=r"junk\.tar\.gz is damaged or not an archive"):
        restore_backup(junk, Target.of(_settings(tmp_path / "fresh")))


def test_the_schedule_is_due_after_the_interval_or_soon_after_a_first_start() -> None:
    day, first = timedelta(hours=24), timedelta(minutes=10)
    assert not due(None, started=NOW, now=NOW + timedelta(minutes=9), interval=day, first_after=first)
    assert due(None, started=NOW, now=NOW + first, interval=day, first_after=first)
    assert not due(NOW, started=NOW, now=NOW + day - timedelta(seconds=1), interval=day, first_after=first)
    assert due(NOW, started=NOW, now=NOW + day, interval=day, first_after=first)


async def test_scheduled_backups_keep_the_newest_n(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "var", keep=2, interval_hours=1, first_after_seconds=0)
    database = await Database.connect(settings.database_url)
    await database.upgrade()
    await database.close()
    made = []
    for hour in range(4):
        now = NOW + timedelta(hours=hour)
        made.append(scheduled_backup(settings, started=NOW, now=now))
        # Twice in the same hour (a second worker, or a second tick): the second finds nothing due.
        assert scheduled_backup(settings, started=NOW, now=now + timedelta(minutes=5)) is None
    kept = archives(tmp_path / "var" / "backups")
    assert kept == made[2:]
    assert [p.name for p in kept] == [
        "yunhui-backup-20261203T110000Z.tar.gz",
        "yunhui-backup-20261203T120000Z.tar.gz",
    ]


async def test_a_migration_backs_up_an_existing_database_first(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "var")
    database = await Database.connect(settings.database_url)
    try:
        # A fresh database has nothing to lose: no backup.
        assert await upgrade_with_backup(database, settings, now=NOW) is None

        def to_0104(connection: object) -> None:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "0104")

        async with database.engine.begin() as conn:
            await conn.run_sync(to_0104)
        saved = await upgrade_with_backup(database, settings, now=NOW)
        assert saved is not None and saved.name.startswith(UPGRADE_PREFIX)
        assert read_manifest(saved).schema_revision == "0104"
        assert await database.is_current()
        assert await upgrade_with_backup(database, settings, now=NOW) is None  # nothing pending
    finally:
        await database.close()


def test_the_cli_prints_one_line_for_a_refused_restore(archive: Path, tmp_path: Path) -> None:
    from tests.operations.backup_scene import yunhui_here

    newer = _rewrite(archive, tmp_path / "newer.tar.gz", manifest={"schema_revision": "0999"})
    done = yunhui_here("restore", str(newer), var_dir=tmp_path / "fresh")
    assert done.returncode == 1
    assert done.stderr.startswith("Error: the archive's schema revision 0999 is newer than this Yunhui's")
    assert len(done.stderr.strip().splitlines()) == 1
    assert isinstance(done, subprocess.CompletedProcess)

"""The ``yunhui`` command: serve, db upgrade, backup, restore, admin create, version."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
import signal
import ssl
import sys
from collections.abc import Callable, Coroutine
from importlib.metadata import version
from pathlib import Path
from typing import Any, TypeVar

import click
from aiohttp import web

from rooms.audit.recorder import Actor, acting
from rooms.database import Database
from rooms.errors import RoomsError
from rooms.users import create_user, has_platform_admin
from yunhui import backup, backup_jobs
from yunhui.app import create_app, utc_now
from yunhui.bootstrap import ensure_secret_key, ensure_self_signed_cert
from yunhui.cluster import ClusterUnreachable, list_workers, worker_overrides
from yunhui.drain import DRAIN
from yunhui.leader import start_up_lock
from yunhui.logs import configure_logging
from yunhui.monitor import serving_at
from yunhui.settings import Settings, SettingsError, load_settings
from yunhui.supervisor import supervise

log = logging.getLogger(__name__)
T = TypeVar("T")

CLI_ACTOR = Actor(None, "system: yunhui admin create", None, "")


def _run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        import uvloop
    except ImportError:  # uvloop is optional off Linux
        return asyncio.run(main())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


class _Context:
    def __init__(self, config: Path | None, log_format: str | None, log_level: str | None) -> None:
        self.config = config
        self.log_format = log_format
        self.log_level = log_level

    def argv(self) -> list[str]:
        """The global options again, for the worker processes a supervisor starts."""
        argv = [] if self.config is None else ["--config", str(self.config)]
        if self.log_format:
            argv += ["--log-format", self.log_format]
        if self.log_level:
            argv += ["--log-level", self.log_level]
        return argv

    def settings(self, **overrides: Any) -> Settings:
        section: dict[str, Any] = {}
        if self.log_format:
            section["format"] = self.log_format
        if self.log_level:
            section["level"] = self.log_level
        merged = dict(overrides)
        if section:
            merged["logging"] = section
        try:
            settings = load_settings(self.config, overrides=merged)
        except SettingsError as exc:
            click.echo(f"yunhui: configuration error: {exc}", err=True)
            sys.exit(2)
        configure_logging(settings.logging.level, settings.logging.format)
        return settings


@click.group()
@click.option("--config", type=click.Path(path_type=Path), help="A TOML settings file.")
@click.option("--log-format", type=click.Choice(["text", "json"]), help="Log as text or as JSON lines.")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]))
@click.pass_context
def main(ctx: click.Context, config: Path | None, log_format: str | None, log_level: str | None) -> None:
    """Yunhui (云会): self-hosted cloud meeting rooms."""
    ctx.obj = _Context(config, log_format, log_level)


@main.command("version")
def version_command() -> None:
    """Print the version."""
    click.echo(f"yunhui {version('yunhui')}")


@main.group("db")
def db_group() -> None:
    """Database maintenance."""


@db_group.command("upgrade")
@click.pass_obj
def db_upgrade(obj: _Context) -> None:
    """Apply all pending migrations."""
    settings = obj.settings()
    settings.paths.var_dir.mkdir(parents=True, exist_ok=True)

    async def upgrade() -> Path | None:
        database = await Database.connect(settings.database_url)
        try:
            return await backup_jobs.upgrade_with_backup(database, settings, now=utc_now())
        finally:
            await database.close()

    try:
        saved = _run(upgrade)
    except backup.BackupError as exc:
        raise click.ClickException(f"not upgraded: the backup before the migration failed: {exc}") from None
    if saved is not None:
        click.echo(f"backed up to {saved} before migrating")
    click.echo("database is at the latest migration")


@main.command("backup")
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Directory for the archive (backup.directory).",
)
@click.pass_obj
def backup_command(obj: _Context, output: Path | None) -> None:
    """Back up the database, meeting files and recordings into one archive (safe while serving)."""
    settings = obj.settings()
    directory = output or backup_jobs.backup_directory(settings)
    try:
        path = backup.create_backup(backup.Target.of(settings), directory, now=utc_now())
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(str(path))


@main.command("restore")
@click.argument("archive", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite a database and directories that are not empty.")
@click.pass_obj
def restore_command(obj: _Context, archive: Path, force: bool) -> None:
    """Restore an archive made by `yunhui backup` (stop the server first)."""
    settings = obj.settings()
    try:
        manifest = backup.restore_backup(archive, backup.Target.of(settings), force=force)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"restored {archive.name}: schema {manifest.schema_revision}, made {manifest.created_at}")


@main.group("admin")
def admin_group() -> None:
    """User administration."""


@admin_group.command("create")
@click.option("--email", required=True)
@click.option("--account-id", type=int, default=None, help="Omit for a platform admin (sees all accounts).")
@click.option("--password", default=None, help="Omit to generate one and print it once.")
@click.pass_obj
def admin_create(obj: _Context, email: str, account_id: int | None, password: str | None) -> None:
    """Create an admin user."""
    settings = obj.settings()
    settings.paths.var_dir.mkdir(parents=True, exist_ok=True)
    generated = password is None
    secret = password or secrets.token_urlsafe(12)

    async def create() -> None:
        database = await Database.connect(settings.database_url)
        try:
            await database.upgrade()
            with acting(lambda: CLI_ACTOR, utc_now):  # in the audit log as made on the server's console
                await create_user(
                    database,
                    email=email,
                    password=secret,
                    role="admin",
                    account_id=account_id,
                    now=utc_now(),
                    # A generated password was printed on a terminal: it is good for one login only.
                    must_change_password=generated,
                )
        finally:
            await database.close()

    try:
        _run(create)
    except RoomsError as exc:
        raise click.ClickException(f"{exc.field}: {exc.message}" if exc.field else exc.message) from None
    click.echo(f"created admin {email}" + (f" with password {secret}" if generated else ""))


@main.command("workers")
@click.pass_obj
def workers_command(obj: _Context) -> None:
    """List the cluster's worker processes: state, address, load, and which one leads."""
    settings = obj.settings()
    if settings.workers.redis_url is None:
        click.echo("one process (workers.redis_url is not set): no worker registry")
        return
    try:
        rows = _run(lambda: list_workers(settings))
    except ClusterUnreachable as exc:
        raise click.ClickException(str(exc)) from None
    if not rows:
        click.echo("no worker is registered")
        return
    click.echo(f"{'worker':<8}{'state':<10}{'address':<24}{'udp':<14}{'meetings':>9}{'people':>8}  leader")
    for row in rows:
        click.echo(
            f"{row.id:<8}{row.state:<10}{row.address + ':' + str(row.http_port):<24}{row.udp or '-':<14}"
            f"{row.meetings:>9}{row.participants:>8}  {'yes' if row.leads else ''}"
        )


@main.command("serve")
@click.option("--host", default=None, help="Override server.host.")
@click.option("--port", type=int, default=None, help="Override server.port (0 picks a free port).")
@click.option("--workers", type=int, default=None, help="Start N worker processes (PostgreSQL and Redis).")
@click.option("--worker", type=int, default=None, help="Run as worker K (its own port and UDP slice).")
@click.pass_obj
def serve(obj: _Context, host: str | None, port: int | None, workers: int | None, worker: int | None) -> None:
    """Run everything in one process: web, API, meetings, media (or N worker processes of a cluster)."""
    server: dict[str, Any] = {}
    if host is not None:
        server["host"] = host
    if port is not None:
        server["port"] = port
    if workers is not None:
        count = {"workers": {"count": workers}}
        sys.exit(supervise(obj.settings(**count), obj.argv(), workers))
    settings = obj.settings(**({"server": server} if server else {}))
    if worker is not None:
        try:
            layout = worker_overrides(settings, worker)
        except ValueError as exc:
            click.echo(f"yunhui: configuration error: {exc}", err=True)
            sys.exit(2)
        if server:
            layout["server"] = {**layout["server"], **server}
        settings = obj.settings(**layout)
    try:
        code = _run(lambda: _serve(settings))
    except KeyboardInterrupt:
        code = 0
    sys.exit(code)


def _tls_context(settings: Settings, now: dt.datetime) -> ssl.SSLContext | None:
    # 0 means "no HTTPS listener" (TOML cannot write None): a port picked at random would be a second,
    # self-signed listener on server.host that nobody asked for and no firewall rule expects.
    if not settings.server.tls_port:
        return None
    if settings.server.tls_cert is not None and settings.server.tls_key is not None:
        cert, key = settings.server.tls_cert, settings.server.tls_key
    else:
        cert, key = ensure_self_signed_cert(settings.paths.var_dir, now, [settings.server.host])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def _first_admin(database: Database, settings: Settings) -> None:
    if await has_platform_admin(database):
        return
    password = secrets.token_urlsafe(12)
    email = settings.security.first_admin_email
    await create_user(
        database,
        email=email,
        password=password,
        role="admin",
        account_id=None,
        now=utc_now(),
        must_change_password=True,
    )
    click.echo(f"First start: created the admin {email} with the one-time password {password}")


async def _serve(settings: Settings) -> int:
    var_dir = settings.paths.var_dir
    var_dir.mkdir(parents=True, exist_ok=True)
    if settings.security.secret_key is not None:
        secret_key = settings.security.secret_key.get_secret_value()
    else:
        secret_key = ensure_secret_key(var_dir)
    tls = _tls_context(settings, utc_now())

    database = await Database.connect(settings.database_url)
    try:
        async with start_up_lock(database):  # workers starting at once migrate one after the other
            try:
                await backup_jobs.upgrade_with_backup(database, settings, now=utc_now())
            except backup.BackupError as exc:
                click.echo(f"yunhui: not started: the backup before the migration failed: {exc}", err=True)
                return 1
            await _first_admin(database, settings)
    finally:
        await database.close()

    app = await create_app(settings, secret_key=secret_key)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=settings.server.shutdown_timeout)
    await runner.setup()
    # Caught from before the listener opens: a SIGTERM right after "Listening on" (a supervisor stopping
    # workers it has just started) must stop the server cleanly, not kill it by the default action.
    stop = _stop_on_signals()
    try:
        await web.TCPSite(runner, settings.server.host, settings.server.port).start()
        urls = [_url("http", runner.addresses[-1])]
        serving_at(app, urls[0])
        if tls is not None and settings.server.tls_port:
            await web.TCPSite(runner, settings.server.host, settings.server.tls_port, ssl_context=tls).start()
            urls.append(_url("https", runner.addresses[-1]))
        click.echo(f"Yunhui {version('yunhui')} is running. Open {urls[0]}/ (admin: {urls[0]}/admin)")
        for url in urls:
            click.echo(f"Listening on {url}")
        sys.stdout.flush()
        await stop.wait()
        drain = app.get(DRAIN)
        if drain is not None:  # a worker of a cluster: its meetings run on or move first (a 2nd signal: stop)
            stop.clear()
            await drain.run(stop)
        log.info("stopping")
    finally:
        _default_signals()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(runner.cleanup(), settings.server.shutdown_timeout + 1)
    return 0


def _url(scheme: str, address: Any) -> str:
    host, port = address[0], address[1]
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _default_signals() -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)

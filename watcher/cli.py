"""The command line (``watcher [--config PATH] COMMAND``); the contract is in DESIGN.md.

Exit codes: 0 success, 1 when some of the work failed (a rejected row, a failed check),
2 for usage and configuration errors, with file, key and reason. Heavy modules are imported
inside the commands so that start-up stays quick.
"""

from __future__ import annotations

import re
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from typer.core import TyperGroup

from watcher import output
from watcher.output import echo

if TYPE_CHECKING:
    from watcher.config import Config
    from watcher.store import Store



class _Commands(TyperGroup):
    """Every command: a database failure part way through is one line naming the database, exit 1.

    Reaching the database at all is checked by :func:`open_db` (exit 2: the URL or the server is
    wrong); a failure after that (a full disk, a server gone away) means some of the work failed.
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Exception as error:
            if not _is_database_error(error):
                raise
            raise fail(_database_problem(state.database_url, error), 1) from None


app = typer.Typer(
    cls=_Commands,
    help="Borrower Watcher: watch company registries for changes in the bank's borrowers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
borrowers_app = typer.Typer(help="Manage the watched borrowers.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
alerts_app = typer.Typer(help="List alerts and work through them (acknowledge, close).")
notify_app = typer.Typer(help="Notification channels.", no_args_is_help=True)
users_app = typer.Typer(help="Users of the review console.", no_args_is_help=True)
app.add_typer(borrowers_app, name="borrowers")
app.add_typer(db_app, name="db")
app.add_typer(alerts_app, name="alerts")
app.add_typer(notify_app, name="notify")
app.add_typer(users_app, name="users")

CLI_ACTOR = "cli"


class ListFormat(StrEnum):
    table = "table"
    json = "json"


class AlertStatus(StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    closed = "closed"
    all = "all"


class Role(StrEnum):
    officer = "officer"
    reviewer = "reviewer"


class HistoryFormat(StrEnum):
    table = "table"
    csv = "csv"
    jsonl = "jsonl"


class _State:
    config_path: str | None = None
    database_url: str | None = None


state = _State()


def fail(message: str, code: int = 2) -> typer.Exit:
    """One line on stderr saying what and where, then the exit code."""
    echo(f"watcher: {message}", err=True)
    return typer.Exit(code)


@app.callback()
def main_options(
    config: Annotated[
        str | None,
        typer.Option("--config", "-c", help="Config file (default: $WATCHER_CONFIG, then ./watcher.toml)."),
    ] = None,
) -> None:
    state.config_path = config


def load() -> Config:
    from watcher.config import load_config, resolve_config_path
    from watcher.errors import ConfigError

    path = resolve_config_path(state.config_path)
    try:
        config = load_config(path)
    except ConfigError as error:
        raise fail(str(error)) from None
    state.database_url = config.database.url
    return config


def open_db(config: Config) -> Store:
    from sqlalchemy.exc import SQLAlchemyError

    from watcher.store import open_store

    try:
        return open_store(config.database.url)
    except SQLAlchemyError as error:
        raise fail(_database_problem(config.database.url, error)) from None


def _safe_url(url: str) -> str:
    """The URL with its password masked, even when it does not parse."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", url)


def _is_database_error(error: BaseException) -> bool:
    # Commands that never touched the database have not imported SQLAlchemy: nothing to match then.
    errors = sys.modules.get("sqlalchemy.exc")
    return errors is not None and isinstance(error, errors.SQLAlchemyError)


def _database_problem(url: str | None, error: BaseException) -> str:
    """``database URL: ErrorClass: first line``, from the driver's own error when there is one."""
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines()
    where = f"database {_safe_url(url)}" if url else "database"
    return f"{where}: {type(cause).__name__}: {lines[0] if lines else 'failed'}"


# -- init ---------------------------------------------------------------------------------------


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the starter config.")] = Path("watcher.toml"),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter config."""
    from watcher.config import STARTER_CONFIG

    if path.exists() and not force:
        raise fail(f"{path}: already exists (use --force to overwrite)")
    try:
        path.write_text(STARTER_CONFIG, encoding="utf-8")
    except OSError as error:
        raise fail(f"{path}: cannot write ({error.strerror or error})") from None
    echo(f"wrote {path}")


# -- borrowers ----------------------------------------------------------------------------------


@borrowers_app.command("import")
def borrowers_import(
    file: Annotated[Path, typer.Argument(help="CSV: id,name,source,registry_id[,...]")],
) -> None:
    """Upsert borrowers from a CSV file; bad rows are reported and skipped (exit 1)."""
    from watcher.importer import BorrowerFileError, parse_borrowers_csv, upsert_borrowers
    from watcher.pipeline import build_sources

    config = load()
    sources = build_sources(config)
    try:
        parsed = parse_borrowers_csv(file, sources=sources, officers=list(config.officers))
    except BorrowerFileError as error:
        raise fail(str(error)) from None
    for problem in parsed.warnings:
        echo(f"{file}: line {problem.line}: warning: {problem.message}", err=True)
    for problem in parsed.rejected:
        echo(f"{file}: line {problem.line}: rejected: {problem.message}", err=True)
    store = open_db(config)
    with store.transaction() as session:
        counts = upsert_borrowers(session, parsed.rows, actor=CLI_ACTOR)
    echo(
        f"imported {len(parsed.rows)} borrower(s): {counts.added} added, {counts.updated} updated, "
        f"{counts.unchanged} unchanged; {len(parsed.rejected)} rejected"
    )
    if parsed.rejected:
        raise typer.Exit(1)


@borrowers_app.command("list")
def borrowers_list(
    output_format: Annotated[ListFormat, typer.Option("--format", help="table or json")] = ListFormat.table,
) -> None:
    """List the watched borrowers."""
    from watcher.store import borrowers

    store = open_db(load())
    with store.session() as session:
        rows = borrowers(session)
    if output_format is ListFormat.json:
        from datetime import timedelta

        from watcher.units import format_duration

        items = [
            {
                "id": b.id,
                "name": b.name,
                "source": b.source,
                "registry_id": b.registry_id,
                "officer": b.officer,
                "tags": b.tag_list,
                "interval": format_duration(timedelta(seconds=b.interval_seconds))
                if b.interval_seconds
                else None,
                "legal_rep_on_file": b.legal_rep_on_file,
            }
            for b in rows
        ]
        output.echo_json(items, indent=2)
        return
    table = output.table("id", "name", "source", "registry_id", "officer", "tags", "last success", "status")
    for b in rows:
        health = f"failing ×{b.consecutive_failures}: {b.last_error_kind}" if b.consecutive_failures else "ok"
        if b.pending_since is not None:
            health = f"awaiting confirmation since {_when(b.pending_since)}"
        table.add_row(
            b.id,
            b.name,
            b.source,
            b.registry_id,
            b.officer or "",
            ",".join(b.tag_list),
            _when(b.last_success_at),
            health if b.last_checked_at else "not checked yet",
        )
    output.print_table(table)


# -- check --------------------------------------------------------------------------------------


@app.command()
def check(
    borrower: Annotated[
        list[str] | None, typer.Option("--borrower", help="Only this borrower (repeatable).")
    ] = None,
    no_notify: Annotated[
        bool, typer.Option("--no-notify", help="Store alerts but do not send them.")
    ] = False,
) -> None:
    """Check borrowers now: fetch, diff, store, alert; exit 1 when any check failed."""
    import asyncio

    from watcher.store import borrowers

    config = load()
    store = open_db(config)
    with store.session() as session:
        selected = borrowers(session, borrower)
    unknown = sorted(set(borrower or ()) - {b.id for b in selected})
    if unknown:
        raise fail(f"unknown borrower id(s): {', '.join(unknown)}")
    if not selected:
        echo("no borrowers to check (import some with `watcher borrowers import FILE.csv`)")
        return
    from sqlalchemy.exc import SQLAlchemyError

    try:
        outcomes = asyncio.run(_run_checks(store, config, selected))
        gaps = _scan_gaps(store, config)
    except SQLAlchemyError as error:
        raise fail(_database_problem(config.database.url, error), 1) from None
    failed = [o for o in outcomes if not o.ok]
    alerts = [o for o in outcomes if o.alert_id is not None]
    baselines = sum(1 for o in outcomes if o.ok and o.baseline)
    waiting = sum(1 for o in outcomes if o.awaiting_confirmation)
    echo(
        f"checked {len(outcomes)}: {len(outcomes) - len(failed)} ok ({baselines} baseline), "
        f"{len(failed)} failed, {len(alerts)} alert(s)"
        + (f", {waiting} awaiting confirmation" if waiting else "")
    )
    if gaps.gaps or gaps.restored:
        echo(f"monitoring: {len(gaps.gaps)} gap alert(s), {len(gaps.restored)} recovery notice(s)")
    if no_notify and (alerts or gaps.alert_ids):
        echo("alerts stored; --no-notify: nothing sent (the daemon or the next check sends them)")
    elif not no_notify:
        try:
            report = asyncio.run(_dispatch(store, config))
        except SQLAlchemyError as error:
            raise fail(_database_problem(config.database.url, error), 1) from None
        if report.sent or report.failed or report.dead:
            echo(
                f"deliveries: {report.sent} sent, {report.failed} failed (will retry), {report.dead} dead"
            )
    if failed:
        echo(
            "failed: " + "; ".join(f"{o.borrower_id} ({o.error_kind}: {o.error})" for o in failed), err=True
        )
        raise typer.Exit(1)


def _scan_gaps(store: Store, config: Config):
    from watcher.models import utcnow
    from watcher.monitoring import scan_monitoring_gaps

    with store.transaction() as session:
        return scan_monitoring_gaps(session, config, utcnow())


async def _run_checks(store: Store, config: Config, selected):
    from watcher.pipeline import Checker, CheckOutcome

    checker = Checker(store, config)
    try:
        if sys.stdout.isatty():
            with output.progress_bar("checking", len(selected)) as step:

                def advance(outcome: CheckOutcome) -> None:
                    step(None if outcome.ok else f"{outcome.borrower_id}: {outcome.error_kind}")

                return await checker.check(selected, on_outcome=advance)
        return await checker.check(selected, on_outcome=lambda outcome: echo(_outcome_line(outcome)))
    finally:
        await checker.aclose()


def instance_name(config: Config) -> str:
    import os
    import socket

    return config.watcher.instance_name or f"{socket.gethostname()}:{os.getpid()}"


async def _dispatch(store: Store, config: Config):
    from watcher.dispatch import Dispatcher

    dispatcher = Dispatcher(store, config, instance=instance_name(config), lease=config.schedule.lease)
    try:
        return await dispatcher.dispatch_due()
    finally:
        dispatcher.close()


def _outcome_line(outcome) -> str:
    if not outcome.ok:
        return f"{outcome.borrower_id}: failed ({outcome.error_kind}): {outcome.error}"
    if outcome.baseline:
        line = f"{outcome.borrower_id}: baseline stored"
    elif outcome.changes:
        line = f"{outcome.borrower_id}: {outcome.changes} change(s)"
    else:
        line = f"{outcome.borrower_id}: unchanged"
    if outcome.alert_id is not None:
        line += f", alert #{outcome.alert_id} ({outcome.severity})"
    return line


# -- history ------------------------------------------------------------------------------------


@app.command()
def history(
    borrower: Annotated[
        list[str] | None, typer.Option("--borrower", help="Only this borrower (repeatable).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only changes detected on or after this date (YYYY-MM-DD).")
    ] = None,
    category: Annotated[list[str] | None, typer.Option(help="Only this category (repeatable).")] = None,
    output_format: Annotated[
        HistoryFormat, typer.Option("--format", help="table, csv or jsonl")
    ] = HistoryFormat.table,
) -> None:
    """The change history, oldest first."""
    from datetime import UTC, datetime

    from watcher.record import Category
    from watcher.store import history as query_history

    since_at = None
    if since:
        try:
            since_at = datetime.fromisoformat(since)
        except ValueError:
            raise fail(f"--since {since!r}: expected a date like 2026-01-31") from None
        since_at = since_at if since_at.tzinfo else since_at.replace(tzinfo=UTC)
    known = {c.value for c in Category}
    bad = sorted(set(category or ()) - known)
    if bad:
        raise fail(f"--category {', '.join(bad)}: unknown (known: {', '.join(sorted(known))})")
    store = open_db(load())
    with store.session() as session:
        rows = query_history(session, borrower_ids=borrower or (), since=since_at, categories=category or ())
    print_history(rows, output_format)


def print_history(rows, output_format: HistoryFormat) -> None:
    import csv

    from watcher.console.exports import neutralise
    from watcher.store import HISTORY_FIELDS

    if output_format is HistoryFormat.jsonl:
        for row in rows:
            output.echo_json(row.as_json())
    elif output_format is HistoryFormat.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=HISTORY_FIELDS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else neutralise(v)) for k, v in row.as_json().items()})
    else:
        table = output.table(
            "id",
            "detected",
            "borrower",
            "category",
            "action",
            "subject",
            "before → after",
            "effective",
            "severity",
            "alert",
        )
        for row in rows:
            table.add_row(
                str(row.id),
                _when(row.detected_at),
                f"{row.borrower_id} {row.borrower_name}",
                row.category,
                row.action,
                row.subject,
                f"{row.before or '–'} → {row.after or '–'}",
                row.effective_date.isoformat() if row.effective_date else "",
                row.severity or "",
                str(row.alert_id or ""),
            )
        output.print_table(table)


# -- run ----------------------------------------------------------------------------------------


@app.command()
def run() -> None:
    """The daemon: check borrowers as they fall due and deliver alerts, until SIGTERM."""
    import asyncio

    from watcher.daemon import Daemon, InstanceLockError, SqliteInstanceLock
    from watcher.logs import configure
    from watcher.store import Store

    config = load()
    configure(fmt=config.logging.format, level=config.logging.level)
    sqlite_path = Store(config.database.url).sqlite_path
    lock = SqliteInstanceLock(sqlite_path) if sqlite_path else None
    if lock is not None:
        try:
            lock.acquire()  # before any migration: a second instance must not touch the schema
        except InstanceLockError as error:
            raise fail(str(error)) from None
        except OSError as error:
            raise fail(
                f"database {_safe_url(config.database.url)}: cannot open the lock file {lock.path} "
                f"({error.strerror or error})"
            ) from None
    try:
        store = open_db(config)
    except typer.Exit:
        if lock is not None:
            lock.release()
        raise
    try:
        code = asyncio.run(Daemon(store, config, instance=instance_name(config)).run())
    finally:
        if lock is not None:
            lock.release()
        store.dispose()
    raise typer.Exit(code)


# -- alerts -------------------------------------------------------------------------------------


@alerts_app.callback(invoke_without_command=True)
def alerts_list(
    ctx: typer.Context,
    status: Annotated[AlertStatus, typer.Option(help="open, acknowledged, closed or all")] = AlertStatus.open,
) -> None:
    """List alerts (open ones by default), newest first."""
    if ctx.invoked_subcommand is not None:
        return
    from watcher.alerts import list_alerts

    store = open_db(load())
    with store.session() as session:
        rows = list_alerts(session, status=None if status is AlertStatus.all else status.value)
    table = output.table("id", "created", "severity", "status", "borrower", "source", "handled by", "note")
    for alert, borrower in rows:
        handled = alert.closed_by or alert.acknowledged_by or ""
        table.add_row(
            str(alert.id),
            _when(alert.created_at),
            alert.severity,
            alert.status,
            f"{borrower.id} {borrower.name}" if borrower else f"{alert.kind}: {alert.source}",
            alert.source,
            handled,
            alert.note or "",
        )
    output.print_table(table)


def _lifecycle(step, alert_id: int, by: str, note: str | None, verb: str) -> None:
    from watcher.alerts import AlertStateError
    from watcher.models import utcnow

    if not by.strip():
        raise fail("--by must name who handles the alert")
    store = open_db(load())
    try:
        with store.transaction() as session:
            alert = step(session, alert_id, by=by.strip(), note=note, at=utcnow())
    except KeyError:
        raise fail(f"no alert #{alert_id}", 1) from None
    except AlertStateError as error:
        raise fail(str(error), 1) from None
    echo(f"alert #{alert.id} {verb} by {by.strip()}")


@alerts_app.command("ack")
def alerts_ack(
    alert_id: Annotated[int, typer.Argument(metavar="ID", help="Alert id.")],
    by: Annotated[str, typer.Option("--by", help="Who acknowledges it.")],
    note: Annotated[str | None, typer.Option("--note", help="What was done or decided.")] = None,
) -> None:
    """Acknowledge an open alert (recorded in the audit log)."""
    from watcher.alerts import acknowledge

    _lifecycle(acknowledge, alert_id, by, note, "acknowledged")


@alerts_app.command("close")
def alerts_close(
    alert_id: Annotated[int, typer.Argument(metavar="ID", help="Alert id.")],
    by: Annotated[str, typer.Option("--by", help="Who closes it.")],
    note: Annotated[str | None, typer.Option("--note", help="How it was resolved.")] = None,
) -> None:
    """Close an open or acknowledged alert (recorded in the audit log)."""
    from watcher.alerts import close

    _lifecycle(close, alert_id, by, note, "closed")


# -- notify -------------------------------------------------------------------------------------


@notify_app.command("test")
def notify_test(
    notifier: Annotated[
        str | None, typer.Option("--notifier", help="Only this notifier (or officer id).")
    ] = None,
) -> None:
    """Send a test message to every target URL and report each one's result (exit 1 if any failed)."""
    import asyncio

    from watcher.notify_test import run_notify_test

    config = load()
    targets = [f"notifier:{name}" for name in sorted(config.notifiers)]
    targets += [f"officer:{name}" for name in sorted(config.officers) if config.officers[name].urls]
    if notifier:
        targets = [t for t in targets if t.split(":", 1)[1] == notifier]
        if not targets:
            known = ", ".join(sorted([*config.notifiers, *config.officers])) or "none configured"
            raise fail(f"--notifier {notifier!r}: no such notifier or officer (known: {known})")
    if not targets:
        raise fail("no notifiers or officers with urls are configured")
    results = asyncio.run(run_notify_test(config, targets))
    for result in results:
        mark = "ok" if result.ok else "FAILED"
        echo(f"{result.target} {result.channel}: {mark}{': ' + result.detail if result.detail else ''}")
    if not all(result.ok for result in results):
        raise typer.Exit(1)


# -- status -------------------------------------------------------------------------------------


@app.command()
def status(
    output_format: Annotated[
        ListFormat, typer.Option("--format", help="table (for people) or json (for scripts)")
    ] = ListFormat.table,
) -> None:
    """Health: instances, last check, due and overdue borrowers, failing sources, delivery backlog.

    Exit 1 when anything needs attention (the problems are listed), 0 when all is well.
    """
    from watcher.health import InstanceState, read_health

    config = load()
    store = open_db(config)
    with store.session() as session:
        report = read_health(session, config)
    if output_format is ListFormat.json:
        output.echo_json(report.as_json(), indent=2)
        raise typer.Exit(0 if report.ok else 1)
    for instance in report.instances:
        if instance.state is InstanceState.stopped:
            state = f"stopped {_when(instance.stopped_at)}"
        elif instance.state is InstanceState.alive:
            state = "alive"
        else:
            state = f"NOT RESPONDING since {_when(instance.heartbeat_at)}"
        echo(
            f"instance {instance.name} ({instance.host}, pid {instance.pid}, {instance.version}): {state}; "
            f"last sweep {_when(instance.last_sweep_at) or 'never'}"
        )
    echo(f"borrowers: {report.borrowers} ({report.due} due, {report.overdue} overdue)")
    echo(f"last check: {_when(report.last_check_at) or 'never'}")
    echo(
        f"deliveries: {report.deliveries_pending} pending, {report.deliveries_retrying} retrying, "
        f"{report.deliveries_dead} dead, {report.deliveries_held} held for digests"
    )
    for health in report.sources:
        state = (
            f"FAILING ×{health.consecutive_failures} ({health.last_error_kind}): {health.last_error}"
            if health.consecutive_failures
            else "ok"
        )
        echo(
            f"source {health.source}: {state}; last success {_when(health.last_success_at) or 'never'}"
        )
    for borrower in report.failing_borrowers:
        echo(
            f"failing borrower {borrower.id}: ×{borrower.consecutive_failures} "
            f"({borrower.last_error_kind}) {borrower.last_error}"
        )
    for borrower in report.awaiting_confirmation:
        seen = _when(borrower.pending_since)
        echo(f"awaiting confirmation: {borrower.id} (a mass disappearance seen {seen})")
    for problem in report.problems:
        echo(f"problem: {problem.message}")
    echo("health: ok" if report.ok else f"health: {len(report.problems)} problem(s)")
    if not report.ok:
        raise typer.Exit(1)


# -- console ------------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: [console] host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: [console] port).")] = None,
) -> None:
    """Serve the review console (web pages for officers and compliance) until SIGTERM or Ctrl-C."""
    import asyncio
    import signal

    from watcher.console.app import ConsoleStartError, serve_console
    from watcher.logs import configure

    config = load()
    if config.console.secret_key is None:
        raise fail(
            f"{config.path}: key console.secret_key: required to serve the console "
            '(e.g. secret_key = "${WATCHER_CONSOLE_KEY}")'
        )
    if port is not None and not 1 <= port <= 65535:
        raise fail(f"--port {port}: expected 1 to 65535")
    configure(fmt=config.logging.format, level=config.logging.level)
    store = open_db(config)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await serve_console(store, config, stop, host=host, port=port)

    echo(
        f"console on http://{host or config.console.host}:{port or config.console.port}/ "
        f"(database {store.safe_url}); stop with Ctrl-C",
        err=True,
    )
    try:
        asyncio.run(main())
    except ConsoleStartError as error:
        raise fail(str(error), 1) from None
    finally:
        store.dispose()


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="Sign-in name.")],
    role: Annotated[Role, typer.Option("--role", help="officer (own borrowers) or reviewer (all).")],
    officer: Annotated[
        str | None, typer.Option("--officer", help="The [officers.<id>] this officer is (role officer).")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Display name, recorded as who handled an alert.")
    ] = None,
    language: Annotated[str | None, typer.Option(help="Preferred console language: zh-CN or en.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
) -> None:
    """Add a console user; the password is asked for (or read from stdin), never given as an argument."""
    from watcher.console.auth import UserError, create_user

    config = load()
    if officer is not None and officer not in config.officers:
        known = ", ".join(sorted(config.officers)) or "none configured"
        raise fail(f"--officer {officer!r}: no such [officers.<id>] in the config (known: {known})")
    if language is not None and language not in ("zh-CN", "en"):
        raise fail(f"--language {language!r}: expected zh-CN or en")
    password = _read_new_password(password_stdin)
    display_name = name or (config.officers[officer].name if officer else username)
    store = open_db(config)
    try:
        with store.transaction() as session:
            create_user(
                session,
                username=username,
                password=password,
                role=role.value,
                display_name=display_name,
                officer_id=officer,
                language=language,
                actor=CLI_ACTOR,
            )
    except UserError as error:
        raise fail(str(error)) from None
    finally:
        store.dispose()
    echo(f"added {role.value} {username} ({display_name})")


def _read_new_password(password_stdin: bool) -> str:
    """A new password from stdin's first line, or asked twice on a terminal; never an argument."""
    import getpass

    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise fail("no terminal to ask for the password; pipe it in with --password-stdin")
    password = getpass.getpass("password: ")
    if getpass.getpass("again: ") != password:
        raise fail("the passwords differ")
    return password


@users_app.command("list")
def users_list(
    output_format: Annotated[ListFormat, typer.Option("--format", help="table or json")] = ListFormat.table,
) -> None:
    """Console users: role, officer, whether active, and how many sessions are signed in."""
    from watcher.console.auth import list_users, session_counts
    from watcher.models import utcnow

    store = open_db(load())
    try:
        with store.session() as session:
            users = list_users(session)
            sessions = session_counts(session, now=utcnow())
    finally:
        store.dispose()
    rows = [
        {
            "username": user.username,
            "display_name": user.display_name,
            "role": user.role,
            "officer": user.officer_id,
            "language": user.language,
            "active": user.active,
            "sessions": sessions.get(user.id, 0),
            "created_at": user.created_at.isoformat(),
        }
        for user in users
    ]
    if output_format is ListFormat.json:
        output.echo_json(rows, indent=2)
        return
    table = output.table("user", "name", "role", "officer", "active", "sessions", "created")
    for user, row in zip(users, rows, strict=True):
        table.add_row(
            user.username,
            user.display_name,
            user.role,
            user.officer_id or "",
            "yes" if user.active else "disabled",
            str(row["sessions"]),
            _when(user.created_at),
        )
    output.print_table(table)


def _set_active(username: str, active: bool) -> None:
    from watcher.console.auth import UserError, set_active

    store = open_db(load())
    try:
        with store.transaction() as session:
            _user, ended = set_active(session, username, active=active, actor=CLI_ACTOR)
    except UserError as error:
        raise fail(str(error)) from None
    finally:
        store.dispose()
    if active:
        echo(f"enabled {username}")
    else:
        echo(f"disabled {username}; {ended} session(s) signed out")


@users_app.command("disable")
def users_disable(username: Annotated[str, typer.Argument(help="Sign-in name.")]) -> None:
    """Refuse a user's sign-ins and sign out every session of theirs at once."""
    _set_active(username, False)


@users_app.command("enable")
def users_enable(username: Annotated[str, typer.Argument(help="Sign-in name.")]) -> None:
    """Let a disabled user sign in again (their old sessions stay ended)."""
    _set_active(username, True)


@users_app.command("passwd")
def users_passwd(
    username: Annotated[str, typer.Argument(help="Sign-in name.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
) -> None:
    """Set a user's password; the password is asked for (or read from stdin), and every session ends."""
    from watcher.console.auth import UserError, set_password

    config = load()
    password = _read_new_password(password_stdin)
    store = open_db(config)
    try:
        with store.transaction() as session:
            _user, ended = set_password(session, username, password, actor=CLI_ACTOR)
    except UserError as error:
        raise fail(str(error)) from None
    finally:
        store.dispose()
    echo(f"password of {username} changed; {ended} session(s) signed out")


# -- db -----------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the database schema (history is never dropped)."""
    from sqlalchemy.exc import SQLAlchemyError

    from watcher.store import Store

    config = load()
    store = Store(config.database.url)
    try:
        before, after = store.upgrade()
    except SQLAlchemyError as error:
        raise fail(_database_problem(config.database.url, error)) from None
    if before == after:
        echo(f"database is up to date (revision {after})")
    else:
        echo(f"database upgraded from {before or 'empty'} to {after}")


# -- demo ---------------------------------------------------------------------------------------


@app.command()
def demo(
    language: Annotated[str, typer.Option(help="zh-CN or en")] = "zh-CN",
    keep: Annotated[Path | None, typer.Option(help="Keep the demo database in this folder.")] = None,
) -> None:
    """Run the real pipeline on bundled sample data (three rounds of registry changes), offline."""
    from watcher.demo import run_demo

    if language not in ("zh-CN", "en"):
        raise fail(f"--language {language!r}: expected zh-CN or en")
    run_demo(language=language, keep=keep, echo=echo, print_history=print_history)


# -- output helpers -----------------------------------------------------------------------------


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def main() -> None:
    app()

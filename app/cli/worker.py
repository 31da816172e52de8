"""Operator CLI for background work: ``flask worker ...``.

With Redis (production) the work runs on the task queue: ``flask worker run`` starts a Celery worker and
``flask worker beat`` the scheduler that queues due jobs (run exactly one beat; a second one queues nothing
twice, but is wasted). Without Redis (the demo, one host) ``flask worker run --embedded`` runs due jobs in
this one process. Output is counts and ids, never PII.
"""

from __future__ import annotations

import signal
import tempfile
from pathlib import Path
from types import FrameType

import click
from flask import current_app

from app.cli.errors import CommandGroup
from app.services import services
from app.worker import EmbeddedScheduler, due_accounts


@click.group("worker", cls=CommandGroup)
def worker_cli() -> None:
    """Background work: scheduled syncs, the retention purge, the key-epoch job."""


@worker_cli.command("run")
@click.option(
    "--embedded",
    is_flag=True,
    help="Run due jobs in this process (no Redis needed); the default when LABELVAULT_REDIS_URL is unset.",
)
@click.option("--concurrency", default=2, show_default=True, help="Task processes (task queue only).")
@click.option(
    "--pool",
    type=click.Choice(["prefork", "threads", "solo"]),
    default="prefork",
    show_default=True,
    help="Celery pool (task queue only).",
)
@click.option("--loglevel", default="INFO", show_default=True, help="Celery's log level.")
@click.option("--name", help="This worker's node name (default: celery@<host>); unique per host.")
def worker_run(embedded: bool, concurrency: int, pool: str, loglevel: str, name: str | None) -> None:
    """Run background work until stopped (SIGTERM or Ctrl-C).

    \b
    Task queue (LABELVAULT_REDIS_URL set): a Celery worker taking syncs, purges and key epochs from Redis.
    Start `flask worker beat` once as well, so due jobs get queued.
    Embedded (--embedded, or no Redis): looks for due jobs every LABELVAULT_WORKER_TICK_SECONDS and runs
    them one after another in this process.
    Many accounts: `--pool threads --concurrency 64` runs 64 syncs at once in one process (they mostly wait
    on the marketplace), with a database pool as large (LABELVAULT_DATABASE_POOL_SIZE).
    """
    settings = services().settings
    if embedded or not (settings.broker_url or settings.redis_url):
        scheduler = EmbeddedScheduler(services())

        def _stop(signum: int, frame: FrameType | None) -> None:
            scheduler.stop(timeout=0)

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        click.echo(f"embedded scheduler: looking for due jobs every {scheduler.tick:g} s (Ctrl-C to stop)")
        scheduler.start()
        scheduler.wait()
        click.echo(f"stopped after {scheduler.runs} ticks")
        return
    if pool == "threads" and concurrency > settings.database_pool_size + settings.database_max_overflow:
        raise click.UsageError(
            f"--pool threads --concurrency {concurrency} needs as many database connections: set "
            f"LABELVAULT_DATABASE_POOL_SIZE (now {settings.database_pool_size}) plus "
            f"LABELVAULT_DATABASE_MAX_OVERFLOW (now {settings.database_max_overflow}) to at least {concurrency}"
        )
    from app.tasks import QUEUE, bind
    from render import warm_up

    warm_up()
    celery = bind(current_app._get_current_object())  # type: ignore[attr-defined]
    argv = ["worker", "-Q", QUEUE, "--concurrency", str(concurrency), "--pool", pool, "--loglevel", loglevel]
    celery.worker_main([*argv, "--hostname", name] if name else argv)


@worker_cli.command("beat")
@click.option(
    "--schedule-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where beat keeps its last-run times (default: a file in the temp directory).",
)
@click.option("--loglevel", default="INFO", show_default=True, help="Celery's log level.")
def worker_beat(schedule_file: Path | None, loglevel: str) -> None:
    """Queue due jobs every LABELVAULT_WORKER_TICK_SECONDS (the task queue's scheduler; run one)."""
    from app.tasks import bind

    celery = bind(current_app._get_current_object())  # type: ignore[attr-defined]
    path = schedule_file or Path(tempfile.gettempdir()) / "labelvault-beat-schedule"
    celery.start(["beat", "--schedule", str(path), "--loglevel", loglevel])


@worker_cli.command("tick")
def worker_tick() -> None:
    """Run every due job now in this process, once (e.g. from cron on a host without Redis)."""
    scheduler = EmbeddedScheduler(services())
    done = scheduler.run_once()
    click.echo(
        f"synced {len(done.syncs)} accounts, purge {'ran' if done.purge else 'not due'}, "
        f"key epoch {'ran' if done.key_epoch else 'not due'}"
    )


@worker_cli.command("due")
def worker_due() -> None:
    """List the accounts whose sync is due now (ids)."""
    due = due_accounts(services())
    click.echo(f"{len(due)} accounts due" + (f": {', '.join(map(str, due))}" if due else ""))

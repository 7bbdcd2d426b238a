"""The ``antifraud`` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from bot.settings import Settings, SettingsError

logger = logging.getLogger(__name__)


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def _read_lines(handle: BinaryIO) -> Iterator[bytes]:
    yield from handle


async def _run_classify(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from bot.nlp.analysis import get_analyzer
    from bot.nlp.classify import Classifier, classify_lines
    from bot.nlp.rasa_server import RasaClient, RasaUnavailable, rasa_server
    from bot.nlp.taxonomy import load_taxonomy

    taxonomy = load_taxonomy(settings.taxonomy_path)
    analyzer = get_analyzer(settings.taxonomy_path, settings.lookups_dir)
    path = Path(args.file) if args.file and args.file != "-" else None
    if path is not None and not path.is_file():
        print(f"antifraud classify: no such file: {path}", file=sys.stderr)
        return 2
    total = _count_lines(path) if path else None
    try:
        async with (
            rasa_server(settings) as url,
            RasaClient(url, timeout=settings.rasa_request_timeout) as client,
        ):
            classifier = Classifier(client, analyzer, taxonomy, settings.scam_threshold)
            handle = path.open("rb") if path else sys.stdin.buffer
            with (
                handle,
                tqdm(total=total, unit="line", file=sys.stderr, disable=args.quiet) as bar,
            ):
                counts = await classify_lines(
                    classifier,
                    _read_lines(handle),
                    sys.stdout,
                    concurrency=args.concurrency or settings.classify_concurrency,
                    reveal=args.reveal,
                    on_done=lambda _record: bar.update(1),
                )
    except (RasaUnavailable, FileNotFoundError) as exc:
        print(f"antifraud classify: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(
            f"{counts['lines']} lines, {counts['scams']} scams, {counts['errors']} errors",
            file=sys.stderr,
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="antifraud", description="反诈网格助手 command line")
    sub = parser.add_subparsers(dest="command", required=True)
    classify = sub.add_parser(
        "classify",
        help="classify messages (JSON lines with a 'text' field, or plain text lines)",
        description="Reads FILE or standard input; writes one JSON line per input line.",
    )
    classify.add_argument("file", nargs="?", help="input file; '-' or nothing for standard input")
    classify.add_argument("--concurrency", type=int, help="requests in flight to Rasa")
    classify.add_argument(
        "--reveal", action="store_true", help="show personal indicators (phones, cards) unmasked"
    )
    classify.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    sub.add_parser(
        "run",
        help="migrate the store, start and watch the action server and the Rasa server",
    )
    sub.add_parser(
        "app",
        help="the Telegram bot (or, without TELEGRAM_BOT_TOKEN, the sandbox) and the web server",
    )
    db = sub.add_parser("db", help="the store's schema (Alembic migrations)")
    db_verbs = db.add_subparsers(dest="verb", required=True)
    db_verbs.add_parser("upgrade", help="migrate to the newest schema")
    down = db_verbs.add_parser("downgrade", help="migrate back to REVISION ('base': empty)")
    down.add_argument("revision")
    db_verbs.add_parser("current", help="print the schema revision")
    chat = sub.add_parser(
        "chat",
        help="talk to the bot in the terminal, through the same store-first path as Telegram",
    )
    chat.add_argument("--sender", default="cli-resident", help="the conversation id")
    from bot import campaigns_cli, cases_cli, grid_cli, reports_cli, users_cli

    reports_cli.add_parser(sub)
    cases_cli.add_parser(sub)
    grid_cli.add_parser(sub)
    campaigns_cli.add_parser(sub)
    users_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``antifraud`` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"antifraud: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # APScheduler says INFO for every run of every repeating job: seconds apart, nothing learnt
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    if args.command == "classify":
        return asyncio.run(_run_classify(args, settings))
    if args.command == "run":
        from bot.supervise import run

        return run(settings)
    if args.command == "app":
        return _run_app(settings)
    if args.command == "db":
        return _run_db(args, settings)
    if args.command == "reports":
        from bot import reports_cli

        return reports_cli.run(args, settings)
    if args.command == "cases":
        from bot import cases_cli

        return cases_cli.run(args, settings)
    if args.command == "grid":
        from bot import grid_cli

        return grid_cli.run(args, settings)
    if args.command == "campaigns":
        from bot import campaigns_cli

        return campaigns_cli.run(args, settings)
    if args.command == "users":
        from bot import users_cli

        return users_cli.run(args, settings)
    if args.command == "chat":
        from bot.chat import run_chat

        return asyncio.run(run_chat(settings, args.sender))
    return 2


def _run_app(settings: Settings) -> int:
    import signal

    from bot.telegram.app import run_app

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_app(settings, stop)

    asyncio.run(main())
    return 0


def _run_db(args: argparse.Namespace, settings: Settings) -> int:
    from bot.store.db import current, downgrade, upgrade

    if args.verb == "upgrade":
        upgrade(settings.database_url)
    elif args.verb == "downgrade":
        downgrade(settings.database_url, args.revision)
    print(current(settings.database_url) or "base")
    return 0


if __name__ == "__main__":
    sys.exit(main())

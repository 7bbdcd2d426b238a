"""``make bench``: NLU quality by cross-validation, training time, and classification speed.

Writes reports/bench.md (and bench.json) and prints the markdown. Speed compares, on the same
texts in the same run: plain Rasa ``/model/parse`` one request at a time, plain ``/model/parse``
with the same concurrency as ours, ``Classifier.classify`` (parse + spaCy analysis + decision),
and the ``antifraud classify`` command over a file of distinct lines. Conversation turns over
the REST channel compare a plain Rasa turn (a greeting or FAQ answered by a response, no custom
action) with a checked message (``action_assess_message`` on the action server: analysis, store
look-ups and, for a scam, the report written), on SQLite and, when it answers, PostgreSQL.
The Telegram front end (``scripts/bench_telegram.py``) runs end to end on the sandbox against
the same Rasa server as the parse figures, so the two compare: private replies and group
warnings at a steady rate, and the highest group-message rate held for a minute.

``--telegram-only`` runs the Telegram part alone (with a short parse figure for comparison) and
merges it into the existing reports/bench.json and bench.md; ``--quick`` shortens its runs.
Campaigns (``scripts/bench_campaigns.py``, no Rasa needed) run last: one push to
``--campaign-groups`` sandbox groups, uninterrupted and with the sender stopped and killed
halfway; ``--campaigns-only`` runs them alone and merges them the same way.
The staff dashboard (``scripts/bench_dashboard.py``, no Rasa needed) comes after them: its
pages through the real app against the plain store calls, on ``--dashboard-reports`` reports
(SQLite and, when it answers, PostgreSQL); ``--dashboard-only`` runs it alone, merged the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import bench_campaigns
import bench_dashboard
import bench_telegram
import httpx

from bot.nlp.analysis import get_analyzer
from bot.nlp.classify import Classifier
from bot.nlp.evaluate import load_labelled
from bot.nlp.rasa_server import RasaClient, RasaProcess, RasaUnavailable, _free_port
from bot.nlp.taxonomy import load_taxonomy
from bot.services import ActionServerProcess, ActionServerUnavailable
from bot.settings import PROJECT_ROOT, Settings, SettingsError
from bot.store.db import upgrade
from bot.store.repo import Store

REPORTS = PROJECT_ROOT / "reports"
RASA = [str(PROJECT_ROOT / ".venv-rasa" / "bin" / "rasa")]
RASA_ENV = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed_run(command: list[str], log: Path) -> float:
    start = time.perf_counter()
    with log.open("wb") as out:
        subprocess.run(command, cwd=PROJECT_ROOT, env=RASA_ENV, stdout=out, stderr=out, check=True)
    return time.perf_counter() - start


def cross_validate(folds: int) -> dict:
    out = REPORTS / "cv"
    seconds = timed_run(
        [
            *RASA,
            "test",
            "nlu",
            "--cross-validation",
            "--folds",
            str(folds),
            "--config",
            "config.yml",
            "--nlu",
            "nlu_data",
            "--domain",
            "domain.yml",
            "--out",
            str(out),
        ],
        REPORTS / "cv.log",
    )
    report = json.loads((out / "intent_report.json").read_text(encoding="utf-8"))
    return {"seconds": seconds, "report": report}


def training_time(settings: Settings, retrain: bool) -> float:
    """Seconds of the full ``rasa train``: as ``make train`` measured it, or measured again."""
    recorded = settings.model_dir / "antifraud.train-seconds"
    if recorded.is_file() and not retrain:
        return float(recorded.read_text().strip())
    command = [
        *RASA,
        "train",
        "--config",
        "config.yml",
        "--domain",
        "domain.yml",
        "--data",
        "nlu_data",
        "--fixed-model-name",
        "bench",
        "--force",
        "--out",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        return timed_run([*command, tmp], REPORTS / "train.log")


async def plain_parse(url: str, texts: list[str], concurrency: int) -> dict:
    latencies: list[float] = []
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:

        async def one(text: str) -> None:
            async with semaphore:
                start = time.perf_counter()
                response = await http.post("/model/parse", json={"text": text})
                response.raise_for_status()
                latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        await asyncio.gather(*(one(t) for t in texts))
        wall = time.perf_counter() - start
    return summarise(latencies, wall)


async def classifier_calls(url: str, texts: list[str], settings: Settings) -> dict:
    taxonomy = load_taxonomy(settings.taxonomy_path)
    analyzer = get_analyzer(settings.taxonomy_path, settings.lookups_dir)
    latencies = []
    async with RasaClient(url) as client:
        classifier = Classifier(client, analyzer, taxonomy, settings.scam_threshold)
        start = time.perf_counter()
        for text in texts:
            t0 = time.perf_counter()
            await classifier.classify(text)
            latencies.append(time.perf_counter() - t0)
        wall = time.perf_counter() - start
    return summarise(latencies, wall)


def summarise(latencies: list[float], wall: float) -> dict:
    return {
        "n": len(latencies),
        "throughput": len(latencies) / wall,
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * percentile(latencies, 0.95),
        "wall_s": wall,
    }


def cli_run(url: str, lines: list[str]) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
        for text in lines:
            f.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
        path = f.name
    env = {**os.environ, "RASA_URL": url}
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "classify", path, "--quiet"],
        env=env,
        capture_output=True,
        check=True,
    )
    wall = time.perf_counter() - start
    records = result.stdout.decode().splitlines()
    errors = sum('"error"' in r for r in records)
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    os.unlink(path)
    return {
        "n": len(records),
        "errors": errors,
        "throughput": len(records) / wall,
        "wall_s": wall,
        "max_rss_mb": rss_mb,
    }


# Messages Rasa answers with a response of its own: no custom action, no store.
PLAIN_TURNS = [
    "你好",
    "谢谢你",
    "再见",
    "你能做什么",
    "96110是什么电话",
    "验证码能告诉别人吗",
    "被骗了怎么办",
    "帮我写一首诗",
]


async def rest_turns(url: str, texts: list[str], concurrency: int, tag: str) -> dict:
    """REST channel turns, ``concurrency`` conversations at a time, each text a turn."""
    latencies: list[float] = []
    empty = 0
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:

        async def one(i: int, text: str) -> None:
            nonlocal empty
            async with semaphore:
                start = time.perf_counter()
                response = await http.post(
                    "/webhooks/rest/webhook",
                    json={"sender": f"bench-{tag}-{i % 64}", "message": text},
                )
                response.raise_for_status()
                latencies.append(time.perf_counter() - start)
                empty += not response.json()

        start = time.perf_counter()
        await asyncio.gather(*(one(i, t) for i, t in enumerate(texts)))
        wall = time.perf_counter() - start
    return {**summarise(latencies, wall), "empty_replies": empty}


def postgres_url(suffix: str = "") -> str | None:
    """A fresh database on the local PostgreSQL server, or None when there is none."""
    base = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        import psycopg

        name = f"antifraud_bench_{os.getpid()}{suffix}"
        with psycopg.connect(base, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
    except Exception:
        return None
    return base.rsplit("/", 1)[0] + "/" + name


@dataclasses.dataclass
class Stack:
    """A Rasa server with its own action server and store, as ``make run`` starts them."""

    settings: Settings
    action: ActionServerProcess
    rasa: RasaProcess

    @property
    def url(self) -> str:
        return self.rasa.url

    def pids(self) -> dict[str, int]:
        return {"rasa": self.rasa.process.pid, "actions": self.action.process.pid}


@contextlib.contextmanager
def stack(settings: Settings, database_url: str, root: Path) -> Iterator[Stack]:
    """Migrate the store, start the action server and Rasa using it; stop both at the end.

    Rasa's port is chosen first, so the action server (which parses long messages part by part
    there) is given Rasa's address, as ``antifraud run`` does.
    """
    rasa_port = _free_port()
    live = dataclasses.replace(
        settings,
        database_url=database_url,
        spool_dir=root / "spool",
        rasa_url=f"http://127.0.0.1:{rasa_port}",
    )
    upgrade(database_url)
    action = ActionServerProcess(live)
    rasa: RasaProcess | None = None
    try:
        rasa = RasaProcess(live, port=rasa_port, action_url=action.url)
        asyncio.run(action.wait_ready())
        asyncio.run(rasa.wait_ready())
        yield Stack(live, action, rasa)
    finally:
        if rasa is not None:
            rasa.stop()
        action.stop()


def turn_texts(texts: list[str], n_turns: int) -> tuple[list[str], list[str]]:
    rng = random.Random(11)
    plain = [rng.choice(PLAIN_TURNS) for _ in range(n_turns)]
    checked = [rng.choice(texts) for _ in range(n_turns)]
    return plain, checked


def conversation(running: Stack, name: str, texts: list[str], n_turns: int) -> dict:
    """REST turns with actions and the store on ``running``; plain Rasa turns on SQLite."""
    plain, checked = turn_texts(texts, n_turns)
    url = running.url
    results: dict = {}
    asyncio.run(rest_turns(url, plain[:30] + checked[:30], 4, f"warm-{name}"))
    if name == "sqlite":
        results["rest_plain_sequential"] = asyncio.run(rest_turns(url, plain, 1, "plain1"))
        results["rest_plain_concurrent"] = asyncio.run(rest_turns(url, plain, 8, "plain8"))
    results[f"rest_actions_{name}_sequential"] = asyncio.run(
        rest_turns(url, checked, 1, f"{name}1")
    )
    results[f"rest_actions_{name}_concurrent"] = asyncio.run(
        rest_turns(url, checked, 8, f"{name}8")
    )
    store = Store(running.settings.database_url)
    try:
        results[f"reports_written_{name}"] = store.count_reports()
    finally:
        store.close()
    results[f"action_server_rss_mb_{name}"] = rss_of(running.action.process.pid)
    return results


def rss_of(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def load_pool(settings: Settings) -> list[tuple[str, str]]:
    """The labelled test texts (tests/nlu): what every speed figure is measured on."""
    taxonomy = load_taxonomy(settings.taxonomy_path)
    return load_labelled(sorted((PROJECT_ROOT / "tests/nlu").glob("*.yml")), taxonomy)


def speed(running: Stack, n_texts: int, n_lines: int) -> dict:
    settings = running.settings
    pool = [t for t, _ in load_pool(settings)]
    rng = random.Random(7)
    texts = [rng.choice(pool) for _ in range(n_texts)]
    # Distinct lines for the big run, so the duplicate cache does not flatter the figure.
    lines = [f"{rng.choice(pool)} （{i}）" for i in range(n_lines)]
    url = running.url
    asyncio.run(plain_parse(url, texts[:50], 1))  # warm-up
    sequential = asyncio.run(plain_parse(url, texts, 1))
    concurrent = asyncio.run(plain_parse(url, texts, settings.classify_concurrency))
    return {
        "plain_parse_sequential": sequential,
        "plain_parse_concurrent": {**concurrent, "concurrency": settings.classify_concurrency},
        "classifier_sequential": asyncio.run(classifier_calls(url, texts, settings)),
        "cli": cli_run(url, lines),
        "rasa_server_rss_mb": rss_of(running.rasa.process.pid),
    }


def parse_reference(running: Stack, n_texts: int) -> dict:
    """Plain ``/model/parse`` at the classify concurrency: the capacity the bot's path uses."""
    pool = [t for t, _ in load_pool(running.settings)]
    rng = random.Random(7)
    texts = [rng.choice(pool) for _ in range(n_texts)]
    asyncio.run(plain_parse(running.url, texts[:50], 1))  # warm-up
    concurrency = running.settings.classify_concurrency
    result = asyncio.run(plain_parse(running.url, texts, concurrency))
    return {**result, "concurrency": concurrency}


def telegram(running: Stack, args: argparse.Namespace, reference: dict) -> dict:
    plan = bench_telegram.Plan.quick() if args.quick else bench_telegram.Plan()
    changes: dict = {}
    if args.tg_rate is not None:
        changes["rate"] = args.tg_rate
    if args.tg_seconds is not None:
        changes["seconds"] = args.tg_seconds
    if args.tg_rates is not None:
        changes["ramp"] = tuple(args.tg_rates)
    if args.tg_ramp_seconds is not None:
        changes["ramp_seconds"] = args.tg_ramp_seconds
    plan = dataclasses.replace(plan, **changes)
    print(f"Telegram front end: {plan}", flush=True)
    return bench_telegram.run(
        running.settings,
        load_pool(running.settings),
        plan,
        pids=running.pids(),
        log_path=REPORTS / "telegram-app.log",
        parse_reference=reference,
    )


def markdown(data: dict) -> str:
    out = ["# Benchmark", "", f"Machine: {os.cpu_count()} cores. Command: `make bench`."]
    if "load_at_start" in data:
        load = ", ".join(f"{x:.1f}" for x in data["load_at_start"])
        out.append(f"Load average when it started (1, 5, 15 min): {load}.")
    walls = data.get("wall_s", {})
    if "total" in walls:
        out.append(f"The whole run took {walls['total'] / 60:.1f} min.")
    out.append("")
    if "cv" in data:
        report = data["cv"]["report"]
        out += [
            f"## NLU, {data['folds']}-fold cross-validation on the training data "
            f"({data['cv']['seconds']:.0f} s)",
            "",
            "| intent | precision | recall | F1 | support |",
            "|---|---|---|---|---|",
        ]
        for name, row in report.items():
            if isinstance(row, dict) and "f1-score" in row:
                out.append(
                    f"| {name} | {row['precision']:.3f} | {row['recall']:.3f} | "
                    f"{row['f1-score']:.3f} | {row['support']} |"
                )
        scam = [row["f1-score"] for name, row in report.items() if name.startswith("scam_")]
        out += [
            "",
            f"Macro-F1 over the {len(scam)} scam intents: {sum(scam) / len(scam):.3f} "
            "(each fold trains on the other folds only; intents, not the bot's decision).",
            "",
        ]
    if "train_s" in data:
        out += [
            f"Full `rasa train` (NLU and dialogue, from scratch): {data['train_s']:.0f} s.",
            "",
        ]
    s = data.get("speed")
    if s:
        out += speed_markdown(s)
    if "conversation" in data:
        out += conversation_markdown(data["conversation"])
    if "telegram" in data:
        out += bench_telegram.markdown(data["telegram"])
    if "campaigns" in data:
        out += bench_campaigns.markdown(data["campaigns"])
    if "dashboard" in data:
        out += bench_dashboard.markdown(data["dashboard"])
    return "\n".join(out)


def speed_markdown(s: dict) -> list[str]:
    out = [
        "## Classification speed, same texts, same run",
        "",
        "| path | texts | throughput (msg/s) | p50 (ms) | p95 (ms) |",
        "|---|---|---|---|---|",
    ]
    for key, label in [
        ("plain_parse_sequential", "plain Rasa `/model/parse`, 1 at a time"),
        ("plain_parse_concurrent", "plain Rasa `/model/parse`, 8 in flight"),
        ("classifier_sequential", "`Classifier.classify` (parse + analysis)"),
    ]:
        r = s[key]
        out.append(
            f"| {label} | {r['n']} | {r['throughput']:.1f} | {r['p50_ms']:.1f} | "
            f"{r['p95_ms']:.1f} |"
        )
    c = s["cli"]
    out += [
        "",
        f"`antifraud classify` over {c['n']} distinct lines: {c['wall_s']:.0f} s, "
        f"{c['throughput']:.1f} lines/s, {c['errors']} errors, "
        f"peak memory {c['max_rss_mb']:.0f} MB.",
        f"Rasa server resident memory after the run: {s['rasa_server_rss_mb']:.0f} MB.",
        "",
    ]
    return out


def conversation_markdown(t: dict) -> list[str]:
    out: list[str] = []
    if t:
        out += [
            "## Conversation turns over the REST channel, same run",
            "",
            "Plain: a greeting, thanks or FAQ, answered by Rasa with a response (no custom "
            "action). With actions: test-set messages checked by `action_assess_message` (spaCy "
            "analysis, store look-ups, the report written for a scam) on the action server.",
            "",
            "| turn | store | in flight | turns | throughput (turns/s) | p50 (ms) | p95 (ms) |",
            "|---|---|---|---|---|---|---|",
        ]
        rows = [("rest_plain", "plain Rasa", "-")]
        rows += [(f"rest_actions_{db}", "with actions", db) for db in ("sqlite", "postgresql")]
        for key, label, db in rows:
            for mode, flight in (("sequential", 1), ("concurrent", 8)):
                r = t.get(f"{key}_{mode}")
                if r:
                    out.append(
                        f"| {label} | {db} | {flight} | {r['n']} | {r['throughput']:.1f} | "
                        f"{r['p50_ms']:.1f} | {r['p95_ms']:.1f} |"
                    )
        for db in ("sqlite", "postgresql"):
            if f"reports_written_{db}" in t:
                out.append("")
                out.append(
                    f"{db}: {t[f'reports_written_{db}']} reports written; action server "
                    f"{t[f'action_server_rss_mb_{db}']:.0f} MB resident."
                )
        out.append("")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=2000, help="lines for `antifraud classify`")
    parser.add_argument("--turns", type=int, default=200, help="REST turns per measurement")
    parser.add_argument("--skip-cv", action="store_true")
    parser.add_argument("--retrain", action="store_true", help="time a fresh training run")
    tg = parser.add_argument_group("the Telegram front end (scripts/bench_telegram.py)")
    tg.add_argument(
        "--telegram-only",
        action="store_true",
        help="run only the Telegram part; merge it into the existing reports/bench.json",
    )
    tg.add_argument("--skip-telegram", action="store_true")
    tg.add_argument("--quick", action="store_true", help="15 s runs instead of 60 s")
    tg.add_argument("--tg-rate", type=float, help="msg/s of the private and group latency runs")
    tg.add_argument("--tg-seconds", type=float, help="how long each latency run posts")
    tg.add_argument("--tg-rates", type=float, nargs="+", help="the group ramp's rates (msg/s)")
    tg.add_argument("--tg-ramp-seconds", type=float, help="how long each ramp rate posts")
    cg = parser.add_argument_group("campaigns (scripts/bench_campaigns.py)")
    cg.add_argument("--campaign-groups", type=int, default=2000, help="sandbox groups targeted")
    cg.add_argument("--skip-campaigns", action="store_true")
    cg.add_argument(
        "--campaigns-only",
        action="store_true",
        help="run only the campaigns part; merge it into the existing reports/bench.json",
    )
    dg = parser.add_argument_group("the staff dashboard (scripts/bench_dashboard.py)")
    dg.add_argument(
        "--dashboard-reports",
        type=int,
        default=bench_dashboard.Plan.reports,
        help="reports in the store the pages are timed on",
    )
    dg.add_argument("--skip-dashboard", action="store_true")
    dg.add_argument(
        "--dashboard-only",
        action="store_true",
        help="run only the dashboard part; merge it into the existing reports/bench.json",
    )
    args = parser.parse_args()
    if args.dashboard_only and (args.skip_dashboard or args.telegram_only or args.campaigns_only):
        parser.error(
            "--dashboard-only excludes --skip-dashboard, --telegram-only and --campaigns-only"
        )
    if args.dashboard_reports < 100:
        parser.error("--dashboard-reports must be at least 100")
    if args.telegram_only and args.skip_telegram:
        parser.error("--telegram-only and --skip-telegram exclude each other")
    if args.campaigns_only and (args.skip_campaigns or args.telegram_only):
        parser.error("--campaigns-only excludes --skip-campaigns and --telegram-only")
    if args.campaign_groups < 2:
        parser.error("--campaign-groups must be at least 2")
    if args.folds < 2:
        parser.error("--folds must be at least 2")
    for name in ("texts", "lines", "turns"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    for name in ("tg_rate", "tg_seconds", "tg_ramp_seconds"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.tg_rates is not None and min(args.tg_rates) <= 0:
        parser.error("--tg-rates must be positive")
    try:
        return run(args)
    except (
        RasaUnavailable,
        ActionServerUnavailable,
        FileNotFoundError,
        SettingsError,
        bench_campaigns.CampaignBenchError,
        bench_dashboard.DashboardBenchError,
    ) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"bench: a service stopped answering: {exc!r} (see reports/*.log)", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(
            f"bench: {' '.join(map(str, exc.cmd[:3]))} ... failed ({exc.returncode})",
            file=sys.stderr,
        )
        return 1


def campaigns(args: argparse.Namespace, data: dict, walls: dict[str, float]) -> None:
    plan = bench_campaigns.Plan(groups=args.campaign_groups)
    print(f"Campaigns: {plan}", flush=True)
    t0 = time.perf_counter()
    data["campaigns"] = bench_campaigns.run(plan, REPORTS / "campaigns.log")
    data["campaigns"]["separate_run"] = args.campaigns_only
    walls["campaigns"] = time.perf_counter() - t0


def dashboard(args: argparse.Namespace, data: dict, walls: dict[str, float]) -> None:
    """The dashboard on a SQLite file and, when it answers, a PostgreSQL database of its own;
    both removed afterwards."""
    plan = bench_dashboard.Plan(reports=args.dashboard_reports)
    print(f"Dashboard: {plan}", flush=True)
    t0 = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    databases = {"sqlite": f"sqlite:///{root / 'dashboard.db'}"}
    pg = postgres_url("_dashboard")
    if pg:
        databases["postgresql"] = pg
    try:
        data["dashboard"] = bench_dashboard.run(plan, databases)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if pg:
            bench_dashboard.drop_postgres(pg)
    data["dashboard"]["separate_run"] = args.dashboard_only
    walls["dashboard"] = time.perf_counter() - t0


def run(args: argparse.Namespace) -> int:
    REPORTS.mkdir(exist_ok=True)
    settings = Settings.from_env()
    started = time.perf_counter()
    load = os.getloadavg()
    data: dict = {}
    alone = args.telegram_only or args.campaigns_only or args.dashboard_only
    if alone:
        previous = REPORTS / "bench.json"
        if previous.is_file():
            with contextlib.suppress(ValueError):
                data = json.loads(previous.read_text(encoding="utf-8"))
    data["folds"] = data.get("folds", args.folds)
    if not alone:
        data["load_at_start"] = load
    walls: dict[str, float] = data.setdefault("wall_s", {})
    if args.campaigns_only:
        campaigns(args, data, walls)
        return write_report(data)
    if args.dashboard_only:
        dashboard(args, data, walls)
        return write_report(data)
    pool = [t for t, _ in load_pool(settings)]
    root = Path(tempfile.mkdtemp(prefix="bench-store-"))
    # One Rasa server (with its action server and a fresh SQLite store) for the parse figures,
    # the SQLite conversation turns and the Telegram front end: the figures compare.
    with stack(settings, f"sqlite:///{root / 'bench.db'}", root) as running:
        if not args.telegram_only:
            t0 = time.perf_counter()
            data["speed"] = speed(running, args.texts, args.lines)
            walls["speed"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            data["conversation"] = conversation(running, "sqlite", pool, args.turns)
            walls["conversation_sqlite"] = time.perf_counter() - t0
            reference = data["speed"]["plain_parse_concurrent"]
        else:
            reference = parse_reference(running, 400)
        if not args.skip_telegram:
            t0 = time.perf_counter()
            data["telegram"] = telegram(running, args, reference)
            data["telegram"]["separate_run"] = args.telegram_only
            walls["telegram"] = time.perf_counter() - t0
    if not args.telegram_only:
        pg = postgres_url()
        if pg:
            t0 = time.perf_counter()
            pg_root = Path(tempfile.mkdtemp(prefix="bench-store-pg-"))
            with stack(settings, pg, pg_root) as running:
                data["conversation"].update(conversation(running, "postgresql", pool, args.turns))
            walls["conversation_postgresql"] = time.perf_counter() - t0
        if not args.skip_cv:
            t0 = time.perf_counter()
            data["train_s"] = training_time(settings, args.retrain)
            data["cv"] = cross_validate(args.folds)
            walls["cv"] = time.perf_counter() - t0
    if not (args.skip_campaigns or args.telegram_only):
        campaigns(args, data, walls)
    if not (args.skip_dashboard or args.telegram_only):
        dashboard(args, data, walls)
    walls["total" if not args.telegram_only else "telegram_only_total"] = (
        time.perf_counter() - started
    )
    return write_report(data)


def write_report(data: dict) -> int:
    (REPORTS / "bench.json").write_text(json.dumps(data, indent=2, ensure_ascii=False))
    text = markdown(data)
    (REPORTS / "bench.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

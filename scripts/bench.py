"""``make bench``: NLU quality by cross-validation, training time, and classification speed.

Writes reports/bench.md (and bench.json) and prints the markdown. Speed compares, on the same
texts in the same run: plain Rasa ``/model/parse`` one request at a time, plain ``/model/parse``
with the same concurrency as ours, ``Classifier.classify`` (parse + spaCy analysis + decision),
and the ``antifraud classify`` command over a file of distinct lines. Conversation turns over
the REST channel compare a plain Rasa turn (a greeting or FAQ answered by a response, no custom
action) with a checked message (``action_assess_message`` on the action server: analysis, store
look-ups and, for a scam, the report written), on SQLite and, when it answers, PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bot.nlp.analysis import get_analyzer
from bot.nlp.classify import Classifier
from bot.nlp.evaluate import load_labelled
from bot.nlp.rasa_server import RasaClient, RasaProcess
from bot.nlp.taxonomy import load_taxonomy
from bot.services import ActionServerProcess
from bot.settings import PROJECT_ROOT, Settings
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


def postgres_url() -> str | None:
    """A fresh database on the local PostgreSQL server, or None when there is none."""
    base = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        import psycopg

        name = f"antifraud_bench_{os.getpid()}"
        with psycopg.connect(base, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
    except Exception:
        return None
    return base.rsplit("/", 1)[0] + "/" + name


def conversation(settings: Settings, texts: list[str], n_turns: int) -> dict:
    """REST turns with actions and the store, against plain Rasa turns, in one run."""
    rng = random.Random(11)
    plain = [rng.choice(PLAIN_TURNS) for _ in range(n_turns)]
    checked = [rng.choice(texts) for _ in range(n_turns)]
    results: dict = {}
    root = Path(tempfile.mkdtemp(prefix="bench-store-"))
    stores = {"sqlite": f"sqlite:///{root / 'bench.db'}"}
    pg = postgres_url()
    if pg:
        stores["postgresql"] = pg
    for name, url in stores.items():
        live = dataclasses.replace(settings, database_url=url, spool_dir=root / "spool")
        upgrade(url)
        action = ActionServerProcess(live)
        server = RasaProcess(live, action_url=action.url)
        try:
            asyncio.run(action.wait_ready())
            asyncio.run(server.wait_ready())
            asyncio.run(rest_turns(server.url, plain[:30] + checked[:30], 4, "warm"))
            if name == "sqlite":
                results["rest_plain_sequential"] = asyncio.run(
                    rest_turns(server.url, plain, 1, "plain1")
                )
                results["rest_plain_concurrent"] = asyncio.run(
                    rest_turns(server.url, plain, 8, "plain8")
                )
            results[f"rest_actions_{name}_sequential"] = asyncio.run(
                rest_turns(server.url, checked, 1, f"{name}1")
            )
            results[f"rest_actions_{name}_concurrent"] = asyncio.run(
                rest_turns(server.url, checked, 8, f"{name}8")
            )
            store = Store(url)
            results[f"reports_written_{name}"] = store.count_reports()
            results[f"action_server_rss_mb_{name}"] = rss_of(action.process.pid)
        finally:
            server.stop()
            action.stop()
    return results


def rss_of(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def speed(settings: Settings, n_texts: int, n_lines: int) -> dict:
    taxonomy = load_taxonomy(settings.taxonomy_path)
    pool = [
        t for t, _ in load_labelled(sorted((PROJECT_ROOT / "tests/nlu").glob("*.yml")), taxonomy)
    ]
    rng = random.Random(7)
    texts = [rng.choice(pool) for _ in range(n_texts)]
    # Distinct lines for the big run, so the duplicate cache does not flatter the figure.
    lines = [f"{rng.choice(pool)} （{i}）" for i in range(n_lines)]
    server = RasaProcess(settings)
    try:
        asyncio.run(server.wait_ready())
        asyncio.run(plain_parse(server.url, texts[:50], 1))  # warm-up
        results = {
            "plain_parse_sequential": asyncio.run(plain_parse(server.url, texts, 1)),
            "plain_parse_concurrent": asyncio.run(
                plain_parse(server.url, texts, settings.classify_concurrency)
            ),
            "classifier_sequential": asyncio.run(classifier_calls(server.url, texts, settings)),
            "cli": cli_run(server.url, lines),
            "rasa_server_rss_mb": rss_of(server.process.pid),
        }
    finally:
        server.stop()
    return results


def markdown(data: dict) -> str:
    out = ["# Benchmark", "", f"Machine: {os.cpu_count()} cores. Command: `make bench`.", ""]
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
    s = data["speed"]
    out += [
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
    if "conversation" in data:
        t = data["conversation"]
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
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=20000)
    parser.add_argument("--turns", type=int, default=400, help="REST turns per measurement")
    parser.add_argument("--skip-cv", action="store_true")
    parser.add_argument("--retrain", action="store_true", help="time a fresh training run")
    args = parser.parse_args()
    REPORTS.mkdir(exist_ok=True)
    settings = Settings.from_env()
    data: dict = {"folds": args.folds}
    data["speed"] = speed(settings, args.texts, args.lines)
    taxonomy = load_taxonomy(settings.taxonomy_path)
    pool = [
        t for t, _ in load_labelled(sorted((PROJECT_ROOT / "tests/nlu").glob("*.yml")), taxonomy)
    ]
    data["conversation"] = conversation(settings, pool, args.turns)
    if not args.skip_cv:
        data["train_s"] = training_time(settings, args.retrain)
        data["cv"] = cross_validate(args.folds)
    (REPORTS / "bench.json").write_text(json.dumps(data, indent=2, ensure_ascii=False))
    text = markdown(data)
    (REPORTS / "bench.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The NLU export on real stores (SQLite and PostgreSQL): intents, masking, dedupe, known examples,
hostile text read back by both YAML readers (PyYAML, and ruamel as Rasa reads it), the window,
the ``antifraud reports export-nlu`` verb, and Rasa's own validator on an exported file."""

from __future__ import annotations

import argparse
import dataclasses
import io
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import yaml
from ruamel.yaml import YAML

from bot import reports_cli
from bot.dashboard.nlu_export import ExportResult, example_text, export_nlu, known_examples
from bot.nlp.taxonomy import load_taxonomy
from bot.settings import PROJECT_ROOT, Settings
from bot.store import Store
from bot.store.models import Report
from tests.store.helpers import SCAM_TEXT, make_report

SHANGHAI = ZoneInfo("Asia/Shanghai")
TAXONOMY = load_taxonomy(Settings().taxonomy_path)
RAW_PHONE = "13800138000"


@pytest.fixture
def empty_dir(tmp_path: Path) -> Path:
    """Training data holding nothing, so that every reviewed text is new."""
    path = tmp_path / "nlu"
    path.mkdir()
    return path


def judged(
    store: Store,
    text: str,
    verdict: str,
    *,
    answered: bool = False,
    at: datetime | None = None,
    sender: str = "r1",
) -> int:
    """A report filed and given ``verdict`` (a scam code, or ``not_scam`` to dismiss)."""
    report = store.add_report(make_report(sender, text))
    if verdict == "not_scam":
        store.transition(report.id, "dismissed", "cli")
    else:
        store.transition(report.id, "confirmed", "cli", verdict_scam_type=verdict)
    if answered:
        store.transition(report.id, "answered", "bot")
    if at is not None:
        store.run_in(
            lambda s: s.execute(sa.update(Report).where(Report.id == report.id).values(
                reviewed_at=at
            )),
            write=True,
        )  # fmt: skip
    return report.id


def examples_of(result: ExportResult) -> dict[str, list[str]]:
    """The exported file read back as Rasa reads it: intent -> its examples, in order."""
    data = yaml.safe_load(result.yaml_text)
    assert data["version"] == "3.1"
    assert isinstance(data["nlu"], list)
    found: dict[str, list[str]] = {}
    for item in data["nlu"]:
        assert set(item) == {"intent", "examples"}
        assert isinstance(item["examples"], str)
        lines = item["examples"].splitlines()
        assert all(line.startswith("- ") for line in lines)
        found[item["intent"]] = [line[2:] for line in lines]
    return found


def test_each_verdict_becomes_its_intent_and_unreviewed_reports_stay_out(store, empty_dir):
    judged(store, "下载APP做任务返佣金，先垫付500元", "rebate")
    judged(store, "老师带你炒股，内部消息稳赚不赔", "investment", answered=True)
    judged(store, "今晚七点小区门口集合跳广场舞", "not_scam")
    judged(store, "明天停水，请大家提前储水", "not_scam", answered=True)
    store.add_report(make_report("r2", "还没人看过的举报文字"))
    reopened = judged(store, "审核后又重新打开的举报", "loan")
    store.transition(reopened, "in_review", "cli")
    in_review = store.add_report(make_report("r3", "正在审核中的举报文字")).id
    store.transition(in_review, "in_review", "cli")

    result = export_nlu(store, TAXONOMY, existing_dir=empty_dir)

    assert examples_of(result) == {
        "scam_rebate": ["下载APP做任务返佣金，先垫付500元"],
        "scam_investment": ["老师带你炒股，内部消息稳赚不赔"],
        "not_scam": ["明天停水，请大家提前储水", "今晚七点小区门口集合跳广场舞"],
    }
    assert result.by_intent == {"scam_rebate": 1, "scam_investment": 1, "not_scam": 2}
    assert (result.examples, result.skipped_known) == (4, 0)
    header = [line for line in result.yaml_text.splitlines() if line.startswith("#")]
    assert "antifraud reports export-nlu" in header[0]
    assert "共 4 条例句" in header[2]
    assert any("每一条都要有人检查" in line for line in header)


def test_nothing_reviewed_is_an_empty_but_valid_file(store, empty_dir):
    store.add_report(make_report())
    result = export_nlu(store, TAXONOMY, existing_dir=empty_dir)
    assert (result.examples, result.by_intent) == (0, {})
    assert yaml.safe_load(result.yaml_text) == {"version": "3.1", "nlu": []}


def test_only_the_masked_text_is_exported(store, empty_dir):
    judged(store, SCAM_TEXT, "rebate")
    # A report whose "masked" text still holds its raw phone (a masking bug) is left out.
    leaky = make_report("r2", f"加我微信，电话{RAW_PHONE}，返利日结")
    leaky = dataclasses.replace(leaky, text_masked=leaky.text)
    report = store.add_report(leaky)
    store.transition(report.id, "confirmed", "cli", verdict_scam_type="rebate")

    result = export_nlu(store, TAXONOMY, existing_dir=empty_dir)

    assert RAW_PHONE not in result.yaml_text
    assert examples_of(result) == {"scam_rebate": [SCAM_TEXT.replace(RAW_PHONE, "138****8000")]}


def test_texts_are_one_line_deduplicated_and_the_latest_verdict_wins(store, empty_dir):
    base = datetime(2026, 11, 2, 9, 0, tzinfo=SHANGHAI)
    judged(store, "点击链接领取\n退款", "customer_service", at=base)
    judged(store, "  点击链接领取   退款 ", "customer_service", at=base + timedelta(hours=1))
    judged(store, "你好吗", "not_scam")  # three characters: too short to teach anything
    judged(store, "这个到底是不是诈骗呢", "not_scam", at=base)
    judged(store, "这个到底是不是诈骗呢", "other_scam", at=base + timedelta(days=1))

    result = export_nlu(store, TAXONOMY, existing_dir=empty_dir)

    assert examples_of(result) == {
        "scam_customer_service": ["点击链接领取 退款"],
        "scam_other": ["这个到底是不是诈骗呢"],
    }
    assert result.examples == 2


def test_examples_already_in_the_training_data_are_skipped(store, tmp_path):
    ours = tmp_path / "nlu"
    (ours / "more").mkdir(parents=True)
    (ours / "scam_rebate.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: scam_rebate\n  examples: |\n'
        "    - 已经在训练数据里的例句\n    - 加[微信](contact)领红包返现\n"
        "- synonym: 微信\n  examples: |\n    - 薇信\n",
        encoding="utf-8",
    )
    (ours / "more" / "not_scam.yaml").write_text(
        "nlu:\n- intent: not_scam\n  examples: |\n    - 明天 停水\n", encoding="utf-8"
    )
    judged(store, "已经在训练数据里的例句", "rebate")
    judged(store, "加微信领红包返现", "rebate")  # the same, once its entity markup is read
    judged(store, "明天\n停水", "not_scam", sender="r2")
    judged(store, "明天\n停水", "not_scam", sender="r3")  # skipped once, counted once
    judged(store, "薇信", "not_scam")  # only a synonym, not an example (and too short)
    judged(store, "一条新的刷单返利例句", "rebate")

    result = export_nlu(store, TAXONOMY, existing_dir=ours)

    assert examples_of(result) == {"scam_rebate": ["一条新的刷单返利例句"]}
    assert result.skipped_known == 3
    assert "训练数据里已有的 3 条没有导出" in result.yaml_text


def test_the_project_training_data_is_the_default(store):
    known = known_examples(PROJECT_ROOT / "nlu_data" / "nlu")
    assert len(known) > 500
    sample = sorted(t for t in known if len(t) >= 8)[0]
    judged(store, sample, "rebate")
    result = export_nlu(store, TAXONOMY)
    assert (result.examples, result.skipped_known) == (0, 1)


def test_unreadable_training_data_is_a_clear_error(store, tmp_path):
    with pytest.raises(ValueError, match="训练数据目录不存在"):
        export_nlu(store, TAXONOMY, existing_dir=tmp_path / "missing")
    (tmp_path / "bad.yml").write_text("nlu: [\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"读不了训练数据 .*bad\.yml"):
        export_nlu(store, TAXONOMY, existing_dir=tmp_path)


HOSTILE = {
    "He said \"转账\" and 'ok'": "He said \"转账\" and 'ok'",
    "key: value: 123 冒号": "key: value: 123 冒号",
    "# 不是注释，是举报": "# 不是注释，是举报",
    "- 不是列表，也是举报": "- 不是列表，也是举报",
    "{a: 1, b: [2]} 花括号": "{a: 1, b: [2]} 花括号",
    "第一行\n第二行\r\n第三行\n\n": "第一行 第二行 第三行",
    "表情 😀🚨🙏 也要保留": "表情 😀🚨🙏 也要保留",
    "<script>alert('x')</script> 点开": "<script>alert('x')</script> 点开",
    "| > &anchor *alias !tag %YAML @at `反引号`": "| > &anchor *alias !tag %YAML @at `反引号`",
    "--- 文档分隔 ... 结束": "--- 文档分隔 ... 结束",
    "结尾是冒号：和:": "结尾是冒号：和:",
    "控制\x01字\x07符\x1b[31m": "控制字符[31m",
    "行\u2028分\u2029隔\x85符": "行 分 隔 符",
    "\ufeff开头有BOM\u3000全角空格\t制表": "开头有BOM 全角空格 制表",
    "点[这里](link)领取红包": "点［这里］(link)领取红包",
    "${HOME} 环境变量 !!python/object": "${HOME} 环境变量 !!python/object",
    "'单引号开头": "'单引号开头",
    '"双引号开头': '"双引号开头',
}


def test_hostile_text_reads_back_exactly(store, empty_dir):
    for number, text in enumerate(HOSTILE):
        judged(store, text, "rebate", sender=f"r{number}")

    result = export_nlu(store, TAXONOMY, existing_dir=empty_dir)

    exported = examples_of(result)["scam_rebate"]
    assert sorted(exported) == sorted(HOSTILE.values())
    assert all(example_text(text) == expected for text, expected in HOSTILE.items())
    # Rasa reads its files with ruamel as YAML 1.2: the same examples come back.
    reader = YAML(typ="safe")
    reader.version = (1, 2)
    data = reader.load(io.StringIO(result.yaml_text))
    lines = data["nlu"][0]["examples"].splitlines()
    assert [line[2:] for line in lines] == exported


def test_the_window_is_on_the_verdict_time(store, empty_dir):
    day = datetime(2026, 11, 10, tzinfo=SHANGHAI)
    judged(store, "十一月九号审核的举报", "rebate", at=day - timedelta(seconds=1))
    judged(store, "十一月十号零点审核的举报", "rebate", at=day)
    judged(store, "十一月十号深夜审核的举报", "rebate", at=day + timedelta(hours=23, minutes=59))
    judged(store, "十一月十一号审核的举报", "rebate", at=day + timedelta(days=1))

    def window(**kwargs: datetime) -> list[str]:
        result = export_nlu(store, TAXONOMY, existing_dir=empty_dir, **kwargs)
        return sorted(examples_of(result).get("scam_rebate", []))

    assert window(since=day, until=day + timedelta(days=1)) == [
        "十一月十号深夜审核的举报",
        "十一月十号零点审核的举报",
    ]
    assert window(since=day + timedelta(days=1)) == ["十一月十一号审核的举报"]
    assert window(until=day) == ["十一月九号审核的举报"]
    assert len(window()) == 4
    header = export_nlu(store, TAXONOMY, existing_dir=empty_dir, since=day).yaml_text
    assert "审核时间：2026-11-10 00:00 起，至今" in header

    with pytest.raises(ValueError, match="timezone-aware"):
        export_nlu(store, TAXONOMY, existing_dir=empty_dir, since=datetime(2026, 11, 10))
    with pytest.raises(ValueError, match="要早于结束时间"):
        export_nlu(store, TAXONOMY, existing_dir=empty_dir, since=day, until=day)


def _export_cli(capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="antifraud")
    reports_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["reports", "export-nlu", *argv])
    settings = dataclasses.replace(Settings.from_env(), database_url=url)
    capsys.readouterr()
    code = reports_cli.run(args, settings)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def test_the_command_writes_stdout_or_a_file_and_sums_up_on_stderr(
    capsys, db_url, store, tmp_path
):
    judged(
        store,
        "十一月十号审核的一条新举报",
        "rebate",
        at=datetime(2026, 11, 10, 23, 0, tzinfo=SHANGHAI),
    )
    judged(
        store,
        "十一月十一号审核的新举报",
        "not_scam",
        at=datetime(2026, 11, 11, 0, 0, tzinfo=SHANGHAI),
    )

    code, out, err = _export_cli(capsys, db_url, "--since", "2026-11-10", "--until", "2026-11-10")
    assert code == 0
    data = yaml.safe_load(out)
    assert data["nlu"] == [{"intent": "scam_rebate", "examples": "- 十一月十号审核的一条新举报\n"}]
    assert "导出 1 条例句（scam_rebate 1）" in err and "要有人检查" in err

    target = tmp_path / "reviewed.yml"
    code, out, err = _export_cli(capsys, db_url, "--since", "2026-11-10", "--out", str(target))
    assert (code, out) == (0, "")
    assert f"写到了 {target}" in err
    assert yaml.safe_load(target.read_text(encoding="utf-8"))["nlu"][1]["intent"] == "not_scam"

    for argv, message in (
        (("--since", "2026-13-01"), "没有这一天"),
        (("--since", "11/10/2026"), "YYYY-MM-DD"),
        (("--since", "2026-11-12", "--until", "2026-11-10"), "在 --until 2026-11-10 之后"),
    ):
        code, out, err = _export_cli(capsys, db_url, *argv)
        assert (code, out) == (2, "")
        assert message in err
    code, _, err = _export_cli(capsys, db_url, "--out", str(tmp_path / "no" / "such" / "x.yml"))
    assert code == 1 and "写不了" in err


@pytest.mark.rasa
def test_rasa_validates_an_export_alongside_the_training_data(store, tmp_path):
    """Rasa's validator, failing on any warning, as ``make test`` runs it on nlu_data."""
    rasa = PROJECT_ROOT / ".venv-rasa" / "bin" / "rasa"
    for number, text in enumerate(HOSTILE):
        judged(store, text, "rebate", sender=f"h{number}")
    judged(store, "邻居们晚上好，明天社区有免费体检", "not_scam")
    judged(store, "自称公安局说我涉嫌洗钱，要把钱转到安全账户", "impersonate_authority")
    out = tmp_path / "export"
    out.mkdir()
    (out / "reviewed.yml").write_text(export_nlu(store, TAXONOMY).yaml_text, encoding="utf-8")

    def validate() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(rasa), "data", "validate", "--fail-on-warnings", "--data", "nlu_data",
             str(out), "--domain", "domain.yml", "--config", "config.yml"],
            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    checked = validate()
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]
    # The check can fail: an example nlu_data gives another intent is a conflict Rasa reports.
    (out / "conflict.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: scam_rebate\n  examples: |\n    - 你好\n',
        encoding="utf-8",
    )
    assert validate().returncode != 0

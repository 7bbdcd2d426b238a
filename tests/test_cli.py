"""``antifraud classify`` end to end, as a staff member or an evaluator runs it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import httpx
import pytest

from bot.nlp.classify import BadLine, parse_line

SEED = "群里有人说用手机下载软件做任务，就能拿订单，是真的吗？"
ANTIFRAUD = [sys.executable, "-m", "bot.cli"]


def run_classify(stdin: bytes, rasa_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RASA_URL": rasa_url}
    return subprocess.run(
        [*ANTIFRAUD, "classify", *args], input=stdin, capture_output=True, env=env, timeout=600
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\n", "empty line"),
        (b"   \n", "empty line"),
        (b'{"text": \n', "invalid JSON"),
        (b'{"txt": "hi"}\n', 'needs a string field "text"'),
        (b'{"text": 5}\n', 'needs a string field "text"'),
        (b'{"text": "  "}\n', '"text" is empty'),
        (b"\xff\xfe\xfa bad bytes\n", "not UTF-8"),
        (("中" * 20_001).encode() + b"\n", "longer than"),
    ],
)
def test_bad_lines_are_refused_with_a_reason(raw, reason):
    with pytest.raises(BadLine, match=reason):
        parse_line(raw)


def test_json_and_plain_lines():
    assert parse_line('{"text": "你好", "id": 7}\n'.encode()) == ("你好", {"id": 7})
    assert parse_line("\ufeff你好\r\n".encode()) == ("你好", {})


def test_classify_mixed_input_keeps_order_and_survives_bad_lines(rasa_url):
    lines = [
        json.dumps({"text": SEED, "id": "a"}, ensure_ascii=False),
        "明天上午小区停水，请大家提前储水",
        "",
        '{"text": broken',
        "您好，我是公安局的，您涉嫌洗钱，请把资金转到安全账户配合调查，联系17096328871",
        "😀😀😀",
        "<script>alert(1)</script>",
    ]
    stdin = ("\n".join(lines) + "\n").encode() + b"\xff\xfe\n"
    result = run_classify(stdin, rasa_url)
    assert result.returncode == 0, result.stderr.decode()
    records = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [r["line"] for r in records] == list(range(1, 9))
    seed, water, empty, broken, police, emoji, script, binary = records
    assert seed["id"] == "a" and seed["is_scam"] and seed["scam_type"] == "rebate"
    assert {f["phrase"] for f in seed["red_flags"]} & {"做任务", "拿订单", "下载软件"}
    assert not water["is_scam"] and water["scam_type"] == "not_scam"
    assert "error" in empty and "error" in broken and "error" in binary
    assert police["is_scam"] and police["scam_type"] == "impersonate_authority"
    assert any(i["value"] == "170****8871" for i in police["indicators"])
    assert "17096328871" not in result.stdout.decode()
    assert not emoji["is_scam"] and not script["is_scam"]
    for record in (seed, water, police, emoji, script):
        assert set(record) >= {
            "text",
            "scam_type",
            "is_scam",
            "confidence",
            "intent",
            "red_flags",
            "indicators",
        }
    assert "8 lines" in result.stderr.decode()  # summary after the progress bar


def test_classify_reads_a_file_and_reveals_on_request(rasa_url, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("加我微信wx_liu8899，日结300元做任务\n", encoding="utf-8")
    result = run_classify(b"", rasa_url, str(path), "--reveal", "--quiet")
    assert result.returncode == 0, result.stderr.decode()
    (record,) = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert any(i["value"] == "wx_liu8899" for i in record["indicators"])
    assert result.stderr.decode() == ""


def test_classify_missing_file_is_a_clear_error(rasa_url):
    result = run_classify(b"", rasa_url, "/nonexistent/file.txt")
    assert result.returncode == 2
    assert "no such file" in result.stderr.decode()


def test_classify_starts_its_own_rasa_server_when_none_answers():
    """With nothing at RASA_URL it serves models/ on a free port and stops it afterwards."""
    result = run_classify(f"{SEED}\n".encode(), "http://127.0.0.1:9", "--quiet")
    assert result.returncode == 0, result.stderr.decode()
    (record,) = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert record["is_scam"] and record["scam_type"] == "rebate"
    started = re.search(
        r"starting the Rasa server on (http://127\.0\.0\.1:\d+)", result.stderr.decode()
    )
    assert started, result.stderr.decode()
    with pytest.raises(httpx.TransportError):
        httpx.get(started.group(1) + "/status", timeout=2)

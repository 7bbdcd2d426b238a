"""Shingles, MinHash and LSH bands: exact Jaccard, and hashes stable across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.settings import PROJECT_ROOT
from bot.store.similarity import (
    BANDS,
    NUM_HASHES,
    bands,
    jaccard,
    minhash,
    shingles,
    similarity,
    text_bands,
)

texts = st.text(
    alphabet=st.sampled_from(list("骗子转账返利客服微信验证码安全账户0123456789abc ，。")),
    max_size=60,
)


def test_shingles() -> None:
    assert shingles("") == frozenset()
    assert shingles("转") == {"转"}
    assert shingles("转 账") == {"转账"}
    assert shingles("转账啊") == {"转账啊"}
    assert shingles("加 微信 号") == {"加微信", "微信号"}


@given(texts, texts)
@settings(max_examples=150, deadline=None)
def test_jaccard_is_symmetric_and_bounded(a: str, b: str) -> None:
    ab = jaccard(shingles(a), shingles(b))
    assert ab == jaccard(shingles(b), shingles(a))
    assert 0.0 <= ab <= 1.0
    assert similarity(a, b) == ab


@given(texts)
@settings(max_examples=150, deadline=None)
def test_identical_texts_have_similarity_one(text: str) -> None:
    assert similarity(text, text) == 1.0
    assert jaccard(shingles(text), set(shingles(text))) == 1.0


@given(texts)
@settings(max_examples=150, deadline=None)
def test_bands_are_deterministic_and_fit_a_signed_bigint(text: str) -> None:
    signature = minhash(shingles(text))
    assert len(signature) == NUM_HASHES
    assert minhash(shingles(text)) == signature
    buckets = bands(signature)
    assert len(buckets) == BANDS
    assert buckets == bands(list(signature))
    assert all(0 <= b < 2**63 for b in buckets)


def test_near_texts_share_bands_and_far_ones_do_not() -> None:
    base = "您的快递丢失了，请添加理赔客服微信kd9527，按提示操作即可获得三倍赔偿，过期不候。"
    close = base.replace("三倍", "双倍")
    far = "明天上午社区卫生服务中心为六十岁以上老人免费体检，请带好身份证和医保卡。"
    shared = sum(x == y for x, y in zip(text_bands(base), text_bands(close), strict=True))
    assert shared >= 1
    assert sum(x == y for x, y in zip(text_bands(base), text_bands(far), strict=True)) == 0
    assert text_bands("") == []


def test_bands_are_the_same_in_another_process() -> None:
    text = "有人让我下载APP做任务返佣金，是骗子吗？"
    code = (
        "import json; from bot.store.similarity import text_bands; "
        f"print(json.dumps(text_bands({text!r})))"
    )
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.append(json.loads(result.stdout))
    assert outputs[0] == outputs[1] == text_bands(text)

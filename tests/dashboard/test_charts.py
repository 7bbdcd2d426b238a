"""The server-drawn charts: heat levels, escaping, no inline styles, well-formed SVG."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from markupsafe import Markup

from bot.dashboard.charts import bar_chart, heat_levels, heatmap_table, legend
from bot.store.trends import Heatmap
from campaigns.names import WEEKDAYS

HOSTILE = '<script>alert("x")</script>&\x01'
SVG = "{http://www.w3.org/2000/svg}"


def _heatmap(cells: dict[tuple[int, int], int]) -> Heatmap:
    counts = tuple(tuple(cells.get((d, h), 0) for h in range(24)) for d in range(7))
    return Heatmap("cases", None, counts, sum(cells.values()), None)


def test_levels_are_shares_of_the_largest_count_and_zero_only_for_zero() -> None:
    assert heat_levels([[0, 1, 2, 4, 8], [7, 0, 100, 0, 0]]) == (
        (0, 1, 1, 1, 1),
        (1, 0, 8, 0, 0),
    )
    assert heat_levels([[0, 1, 4, 8]]) == ((0, 1, 4, 8),)
    assert heat_levels([[3, 3]]) == ((8, 8),)
    assert heat_levels([[0, 0]]) == ((0, 0),)
    assert heat_levels([]) == ()
    with pytest.raises(ValueError, match="whole numbers"):
        heat_levels([[1, -1]])
    with pytest.raises(ValueError, match="whole numbers"):
        heat_levels([[1.5]])  # type: ignore[list-item]


def test_heatmap_table_holds_every_count_with_its_class_and_title() -> None:
    html = heatmap_table(_heatmap({(1, 0): 2, (6, 23): 1}), WEEKDAYS, "刷单返利 案件")
    assert isinstance(html, Markup)
    root = ET.fromstring(str(html))  # the table is well-formed too
    assert root.tag == "table" and root.find("caption").text == "刷单返利 案件"  # type: ignore[union-attr]
    rows = root.findall("./tbody/tr")
    assert [r.find("th").text for r in rows] == list(WEEKDAYS)  # type: ignore[union-attr]
    assert all(len(r.findall("td")) == 24 for r in rows)
    tuesday_midnight = rows[1].findall("td")[0]
    assert tuesday_midnight.text == "2"
    assert tuesday_midnight.get("class") == "heat-8"
    assert tuesday_midnight.get("title") == "周二 00:00–01:00：2 起"
    assert rows[6].findall("td")[23].get("class") == "heat-4"
    assert rows[0].findall("td")[0].get("class") == "heat-0"
    assert len(root.findall("./thead/tr/th")) == 25
    with pytest.raises(ValueError, match="7 names"):
        heatmap_table(_heatmap({}), WEEKDAYS[:6], "x")


def test_hostile_labels_appear_only_escaped_and_nothing_has_a_style() -> None:
    week = heatmap_table(_heatmap({(0, 9): 1}), [HOSTILE] * 7, HOSTILE)
    bars = bar_chart([HOSTILE, "b"], {HOSTILE: [1, 2], "ok": [0, 3]}, title=HOSTILE)
    key = legend([HOSTILE, "已发送"])
    for markup in (week, bars, key):
        text = str(markup)
        assert "<script" not in text
        assert "&lt;script&gt;" in text
        assert "\x01" not in text
        assert not re.search(r"style\s*=", text, re.IGNORECASE)
        ET.fromstring(text)  # still well-formed with the hostile text in it
    title = ET.fromstring(str(bars)).find(f"{SVG}rect/{SVG}title")
    assert title is not None and title.text == f"{HOSTILE[:-1]} · {HOSTILE[:-1]}：1"


def test_stacked_bars_parse_as_svg_with_ticks_labels_and_a_title_per_bar() -> None:
    svg = bar_chart(
        ["3月3日", "3月4日", "3月5日"],
        {"已发送": [3, 0, 5], "失败": [1, 0, 2]},
        width=600,
        height=200,
    )
    root = ET.fromstring(str(svg))
    assert root.tag == f"{SVG}svg"
    assert (root.get("width"), root.get("height"), root.get("class")) == ("600", "200", "chart")
    rects = root.findall(f"{SVG}rect")
    assert len(rects) == 4  # zero values draw nothing
    assert [r.get("class") for r in rects] == ["bar s0", "bar s1", "bar s0", "bar s1"]
    assert [r.find(f"{SVG}title").text for r in rects] == [  # type: ignore[union-attr]
        "3月3日 · 已发送：3",
        "3月3日 · 失败：1",
        "3月5日 · 已发送：5",
        "3月5日 · 失败：2",
    ]
    texts = [t.text for t in root.findall(f"{SVG}text")]
    assert {"3月3日", "3月4日", "3月5日"} <= set(texts)
    assert "0" in texts and "8" in texts  # ticks reach the tallest stack (7) and beyond
    sent, failed = rects[2], rects[3]  # 3月5日: failed sits on top of sent
    assert float(failed.get("y")) + float(failed.get("height")) == pytest.approx(  # type: ignore[arg-type]
        float(sent.get("y")),
        abs=0.15,  # type: ignore[arg-type]
    )
    assert float(sent.get("y")) + float(sent.get("height")) == pytest.approx(166)  # type: ignore[arg-type]


def test_side_by_side_bars_share_the_slot_and_ticks_follow_the_tallest_bar() -> None:
    root = ET.fromstring(str(bar_chart(["a"], {"x": [4], "y": [2]}, stacked=False)))
    first, second = root.findall(f"{SVG}rect")
    assert float(second.get("x")) > float(first.get("x"))  # type: ignore[arg-type]
    assert first.get("width") == second.get("width")
    assert float(first.get("height")) == pytest.approx(2 * float(second.get("height")), abs=0.2)  # type: ignore[arg-type]
    assert "6" not in [t.text for t in root.findall(f"{SVG}text")]  # ticks to 4, not 6


def test_many_labels_are_thinned_and_an_empty_chart_says_so() -> None:
    days = [f"{d}日" for d in range(1, 31)]
    root = ET.fromstring(str(bar_chart(days, {"已发送": list(range(30))}, width=400)))
    shown = [t.text for t in root.findall(f"{SVG}text") if t.text and t.text.endswith("日")]
    assert shown[0] == "1日" and 5 <= len(shown) < 30
    assert len(root.findall(f"{SVG}rect")) == 29
    empty = ET.fromstring(str(bar_chart([], {"已发送": []})))
    assert "暂无数据" in [t.text for t in empty.findall(f"{SVG}text")]


@pytest.mark.parametrize(
    ("labels", "series", "size", "message"),
    [
        (["a", "b"], {"x": [1]}, {}, "has 1 values for 2 labels"),
        (["a"], {}, {}, "at least one series"),
        (["a"], {"x": [-1]}, {}, "whole numbers"),
        (["a"], {"x": [1]}, {"width": 10}, "width"),
        (["a"], {"x": [1]}, {"height": 10**6}, "height"),
    ],
)
def test_bad_chart_input_is_refused_clearly(labels, series, size, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        bar_chart(labels, series, **size)

"""Reading police narratives: the fraud time (not the report time) and the loss."""

from __future__ import annotations

import csv
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from campaigns.narrative import (
    cn_number,
    find_amounts,
    find_times,
    fraud_loss,
    fraud_time,
    parse_amount,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "cases"


def _when(text: str, default_year: int | None = None) -> datetime | None:
    found = fraud_time(text, default_year)
    return None if found is None else found.local


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The brief's example: the report time comes first, the fraud time after 报称.
        (
            "2022年12月18日9时许，事主王某来我所报称：2022年12月17日22时30分许，其在家中接到"
            "自称淘宝客服的电话。",
            datetime(2022, 12, 17, 22, 30),
        ),
        # The report time last.
        (
            "2022年12月17日22时30分许，王某接到陌生电话后转账，于2022年12月18日9时报警。",
            datetime(2022, 12, 17, 22, 30),
        ),
        ("2023年3月2日22点30分，李某添加对方微信。", datetime(2023, 3, 2, 22, 30)),
        ("2023年3月2日下午3时许，李某接到电话。", datetime(2023, 3, 2, 15, 0)),
        ("2023年3月2日凌晨2时许，李某被骗。", datetime(2023, 3, 2, 2, 0)),
        ("2023年3月2日晚上8点半，李某转账。", datetime(2023, 3, 2, 20, 30)),
        ("2023年3月2日中午1点，李某转账。", datetime(2023, 3, 2, 13, 0)),
        ("2023-03-02 21:05，李某扫码付款。", datetime(2023, 3, 2, 21, 5)),
        ("2023/3/2 07:45:10 李某点击链接。", datetime(2023, 3, 2, 7, 45)),
        ("二〇二三年三月二日晚上八点，李某添加对方。", datetime(2023, 3, 2, 20, 0)),
        # The year of 12月17日 from the report date after it: the nearest year, 2022.
        (
            "12月30日晚10时许，张某被骗。2023年1月3日，张某到派出所报案。",
            datetime(2022, 12, 30, 22, 0),
        ),
        (
            "2023年1月3日，刘某来我所报称，其于12月30日凌晨1时许接到电话被骗。",
            datetime(2022, 12, 30, 1, 0),
        ),
        # A clock time alone takes the date last named; 当晚 and 次日 count from it.
        ("2023年5月4日，孙某在家。当晚21时许，对方要求其转账。", datetime(2023, 5, 4, 21, 0)),
        ("2023年5月4日，孙某添加好友，次日上午9时转账5000元。", datetime(2023, 5, 5, 9, 0)),
        # 深夜1时 on the 4th is the small hours of the 5th.
        ("2023年5月4日深夜1时许，孙某转账。", datetime(2023, 5, 5, 1, 0)),
        # The police received the report (我所接到): not the fraud time.
        (
            "2023年5月6日10时许，我所接到周某报警，称其当日凌晨3时许在网上被骗。",
            datetime(2023, 5, 6, 3, 0),
        ),
        # A report word introducing what was said (报警称) does not make the next time a report.
        (
            "2023年6月2日，事主周某报警称，其于5月30日晚8时许在网上申请贷款被骗。",
            datetime(2023, 5, 30, 20, 0),
        ),
        # With a default year.
        ("12月17日22时许，王某被骗。", None),
    ],
)
def test_the_fraud_time_not_the_report_time(text: str, expected: datetime | None) -> None:
    assert _when(text) == expected


def test_a_year_from_context_given_by_the_caller() -> None:
    assert _when("12月17日22时许，王某被骗。", default_year=2022) == datetime(2022, 12, 17, 22)


def test_a_date_without_an_hour_is_found_but_has_no_clock() -> None:
    found = fraud_time("王某于2022年12月17日被骗，于2022年12月18日9时报警。")
    assert found is not None
    assert found.day is not None and found.day.isoformat() == "2022-12-17"
    assert not found.has_clock and found.local is None


def test_only_a_report_time_gives_no_fraud_time() -> None:
    assert fraud_time("2023年4月2日9时，王某到派出所报案。") is None
    assert fraud_time("王某在家中玩手机，后发现银行卡少了钱。") is None


@pytest.mark.parametrize(
    "text",
    [
        "2022年2月30日22时许，王某被骗。",
        "2022年12月17日25时许，王某被骗。",
        "2022年13月1日王某被骗",
    ],
)
def test_impossible_times_are_reported_as_problems(text: str) -> None:
    found = fraud_time(text)
    assert found is not None and found.problem and found.local is None


@pytest.mark.parametrize(
    "text",
    ["王某一时疏忽，晚一点才想起来。", "住在3号楼2单元", "手机号13812345678，验证码202312"],
)
def test_things_that_are_not_times(text: str) -> None:
    assert [m for m in find_times(text) if m.clock or m.day] == []


@pytest.mark.parametrize(
    ("text", "amount", "rule"),
    [
        ("王某被骗人民币3.2万元。", Decimal("32000"), "loss"),
        ("造成损失5000元。", Decimal("5000"), "loss"),
        ("王某先后3次共计转账86,000元。", Decimal("86000"), "total"),
        ("王某被骗1.5万", Decimal("15000"), "loss"),
        ("王某将积蓄三万元转给对方", Decimal("30000"), "transfers"),
        ("造成经济损失5万余元", Decimal("50000"), "loss"),
        # Several transfers without a total: their sum; rebates received are not a loss.
        (
            "王某先转账100元，获得返利130元，后又转账5000元、8000元",
            Decimal("13100"),
            "transfers",
        ),
        # A stated total wins over the parts.
        ("分3次转账2000元、3000元、5000元，合计损失1万元", Decimal("10000"), "total"),
        # A loan amount or a limit is not money lost.
        ("申请贷款20万元，额度30万元，对方称需缴纳解冻费3000元", Decimal("3000"), "transfers"),
        # A total of rebates is not a total loss.
        ("获得返利共计56元，后转账3000元", Decimal("3000"), "transfers"),
        ("将3万元转入对方账户", Decimal("30000"), "transfers"),
    ],
)
def test_loss_forms(text: str, amount: Decimal, rule: str) -> None:
    found = fraud_loss(text)
    assert found is not None
    assert (found.amount, found.rule) == (amount, rule)


@pytest.mark.parametrize(
    "text", ["王某在家中玩手机。", "转账1万美元", "群里有1.5万人", "共3次，每次一起去"]
)
def test_no_loss_in_text_without_yuan(text: str) -> None:
    assert fraud_loss(text) is None


def test_amount_labels() -> None:
    kinds = [(a.value, a.kind) for a in find_amounts("获得佣金120元后，被要求充值2万元")]
    assert kinds == [(Decimal("120"), "other"), (Decimal("20000"), "transfer")]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5000", "5000"),
        ("86,000元", "86000"),
        ("1.5万", "15000"),
        ("3.2万元", "32000"),
        ("￥5000", "5000"),
        ("人民币5000.50元", "5000.50"),
        ("三万元", "30000"),
        ("一万五千元", "15000"),
        ("约5000元", "5000"),
    ],
)
def test_parse_amount(text: str, value: str) -> None:
    assert parse_amount(text) == Decimal(value)


def test_parse_amount_in_units_of_ten_thousand() -> None:
    assert parse_amount("1.5", unit=Decimal(10_000)) == Decimal("15000")
    assert parse_amount("2000元", unit=Decimal(10_000)) == Decimal("20000000")


@pytest.mark.parametrize(
    ("text", "reason"),
    [("-500", "negative"), ("abc", "not an amount"), ("20亿", "not a believable")],
)
def test_parse_amount_refuses(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_amount(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("十七", 17),
        ("二十三", 23),
        ("二〇二二", 2022),
        ("一万五", 15000),
        ("三千五", 3500),
        ("一百零五", 105),
        ("两千", 2000),
        ("abc", None),
    ],
)
def test_chinese_numbers(text: str, value: int | None) -> None:
    assert cn_number(text) == value


def test_thirty_police_narratives() -> None:
    """Every narrative of the fixture gives the expected fraud time and loss."""
    wrong = []
    with (FIXTURES / "narratives.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 30
    for row in rows:
        found = fraud_time(row["简要案情"])
        when = found.local.strftime("%Y-%m-%d %H:%M") if found and found.local else None
        loss = fraud_loss(row["简要案情"])
        if when != row["预期案发时间"] or loss is None or loss.amount != Decimal(row["预期损失"]):
            wrong.append((row["案件编号"], when, loss and loss.amount))
    assert wrong == []


@pytest.mark.parametrize(
    ("text", "amount", "rule"),
    [
        # Cash handed over in person counts as a transfer.
        (
            "当晚8时许，一名自称“办案民警”的男子到其家中，当面取走现金12万元。",
            Decimal("120000"),
            "transfers",
        ),
        (
            "赵某按对方要求将现金8万元装进纸袋，在小区门口交给一名自称“快递员”的男子。",
            Decimal("80000"),
            "transfers",
        ),
        (
            "对方称其涉嫌洗钱，需将存款取出当面交付“专案组”核查，孙某于次日将现金6万元交予"
            "上门的男子。",
            Decimal("60000"),
            "transfers",
        ),
        # The sum is named first, the transfer after it without the sum.
        (
            "对方以母亲住院为由向其借款1.5万元，称下周归还，李某转账后对方将其拉黑。",
            Decimal("15000"),
            "transfers",
        ),
        (
            "对方称急需2万元“保释金”，沈某信以为真，随即通过手机银行转账。",
            Decimal("20000"),
            "transfers",
        ),
        ("邓某在借呗借款2万元后全部转给对方。", Decimal("20000"), "transfers"),
        # A promised return, a credit limit, rebates, a displayed balance are not losses.
        (
            "对方称投资该项目每月可获得收益5万元，王某信以为真，向对方账户转账2万元。",
            Decimal("20000"),
            "transfers",
        ),
        (
            "对方承诺投资10万元后可获得5万元收益，李某当日先转账1万元试水。",
            Decimal("10000"),
            "transfers",
        ),
        (
            "对方称可为其办理一张额度20万元的信用卡，需先缴纳手续费3000元，张某转账后对方失联。",
            Decimal("3000"),
            "transfers",
        ),
        ("前几单共获得返利56元，随后按对方要求转账3000元。", Decimal("3000"), "transfers"),
        (
            "页面显示其账户余额12.6万元，提现时被要求缴纳税费8000元，王某转账后仍无法提现。",
            Decimal("8000"),
            "transfers",
        ),
        (
            "平台账户显示盈利3万元，对方称需先充值2万元才能提现，刘某充值后平台关闭。",
            Decimal("20000"),
            "transfers",
        ),
        (
            "对方发来一张转账5万元的截图，称已转错账，要求其退还，王某随即转账5万元。",
            Decimal("50000"),
            "transfers",
        ),
        # Following what a page shows is not quoting it.
        ("冯某按页面显示的账户转账6000元。", Decimal("6000"), "transfers"),
        # A display that ends in a demand: the demanded sum is paid.
        ("平台显示账户被冻结，需缴纳解冻金5000元。", Decimal("5000"), "transfers"),
    ],
)
def test_cash_handovers_late_transfers_and_figures_that_are_not_losses(
    text: str, amount: Decimal, rule: str
) -> None:
    found = fraud_loss(text)
    assert found is not None
    assert (found.amount, found.rule) == (amount, rule)


@pytest.mark.parametrize(
    "text",
    [
        # Only a limit, a loan applied for, or a prize before the transfer: no sum is known.
        "对方称可为其办理额度20万元的信用卡，张某转账后对方失联。",
        "金某申请借款8万元，对方称需缴纳验资金，金某转账后发现被骗。",
        "奖品为笔记本电脑一台和现金5万元，领奖前须先缴纳公证费。黎某转账后对方失联。",
        # A transfer asked for, or one that could not be made, pays nothing.
        "对方急需2万元，要求其立即转账，钱某未予理会。",
        "对方称需2万元周转，但其在国外无法转账。",
    ],
)
def test_a_transfer_without_a_sum_does_not_pay_a_figure_that_is_no_loss(text: str) -> None:
    assert fraud_loss(text) is None


def test_a_displayed_payment_is_not_a_transfer() -> None:
    kinds = [
        (a.value, a.kind)
        for a in find_amounts("页面显示买家已付款9000元，岳某先后转账4000元、6000元。")
    ]
    assert kinds == [
        (Decimal("9000"), "other"),
        (Decimal("4000"), "transfer"),
        (Decimal("6000"), "transfer"),
    ]


def _loss_figures(name: str) -> tuple[int, int, int, list[str]]:
    """(right, wrong, missed, the wrong and missed case numbers) of the loss over a fixture."""
    with (FIXTURES / name).open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    right = wrong = missed = 0
    bad = []
    for row in rows:
        found = fraud_loss(row["简要案情"])
        if found is None:
            missed += 1
            bad.append(f"{row['案件编号']}: none, expected {row['预期损失']}")
        elif found.amount == Decimal(row["预期损失"]):
            right += 1
        else:
            wrong += 1
            bad.append(f"{row['案件编号']}: {found.amount}, expected {row['预期损失']}")
    return right, wrong, missed, bad


@pytest.mark.parametrize(
    ("name", "right"), [("narratives.csv", 30), ("narratives_heldout.csv", 36)]
)
def test_loss_figures_on_the_fixture_narratives(name: str, right: int) -> None:
    assert _loss_figures(name) == (right, 0, 0, [])

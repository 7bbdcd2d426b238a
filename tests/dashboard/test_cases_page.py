"""The case import page, on both databases: who may use it, real CSV and XLSX files landing in
the store, per-row errors in Chinese, refused files, and file content shown escaped."""

from __future__ import annotations

import io
from dataclasses import replace

import openpyxl
import pytest
from starlette.testclient import TestClient

from bot.dashboard.web import MAX_UPLOAD_BYTES
from bot.settings import Settings
from bot.store import Store
from tests.dashboard.harness import Site, csrf, make_site, signed_in

HEADER = "案件编号,案发时间,诈骗类型,损失金额,年龄,性别,简要案情"
GOOD_ROWS = [
    "A001,2024-03-01 10:30,刷单返利,5000,67,女,在家接到电话被骗",
    "A002,2024-03-02 20:15,冒充公检法,12000,45,男,对方自称警察",
    "A003,2024-03-05 09:00,杀猪盘,80000,30,女,网上认识的男友",
]


@pytest.fixture
def site(store: Store) -> Site:
    return make_site(store)


def csv_bytes(*rows: str, header: str = HEADER, encoding: str = "utf-8") -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode(encoding)


def upload(client: TestClient, name: str, data: bytes, token: str | None = None, **fields: str):  # type: ignore[no-untyped-def]
    form = {"csrf_token": token if token is not None else csrf(client, "/cases/import"), **fields}
    return client.post("/cases/import", data=form, files={"file": (name, data, "text/csv")})


def test_anonymous_and_leaders_are_refused(site: Site) -> None:
    anonymous = site.client()
    assert anonymous.get("/cases/import").status_code == 303
    assert anonymous.post("/cases/import").status_code == 401
    leader = signed_in(site, "lead1")
    assert leader.get("/cases/import").status_code == 403
    token = csrf(leader, "/campaigns")
    answer = upload(leader, "cases.csv", csv_bytes(*GOOD_ROWS), token)
    assert answer.status_code == 403
    assert site.store.count_cases() == 0


def test_a_post_without_the_csrf_token_imports_nothing(site: Site) -> None:
    staff = signed_in(site, "staff")
    answer = staff.post(
        "/cases/import", files={"file": ("cases.csv", csv_bytes(*GOOD_ROWS), "text/csv")}
    )
    assert answer.status_code == 403
    assert upload(staff, "cases.csv", csv_bytes(*GOOD_ROWS), token="wrong").status_code == 403
    assert site.store.count_cases() == 0


def test_a_csv_file_lands_and_a_second_upload_counts_duplicates(site: Site) -> None:
    staff = signed_in(site, "staff")
    page = staff.get("/cases/import")
    assert page.status_code == 200 and "还没有导入过案件" in page.text
    answer = upload(staff, "三月案件.csv", csv_bytes(*GOOD_ROWS))
    assert answer.status_code == 200, answer.text
    assert "已导入，记为第" in answer.text
    assert site.store.count_cases() == 3
    [record] = site.store.case_imports()
    assert record.actor == f"user:{site.users['staff']}" and record.added == 3
    assert {c.scam_type for c in site.store.list_cases()} == {
        "rebate",
        "impersonate_authority",
        "romance",
    }

    again = upload(staff, "三月案件.csv", csv_bytes(*GOOD_ROWS))
    assert again.status_code == 200
    assert "没有新案件" in again.text and "这个文件以前导入过" in again.text
    assert site.store.count_cases() == 3
    assert "三月案件.csv" in staff.get("/cases/import").text


def test_a_dry_run_writes_nothing(site: Site) -> None:
    staff = signed_in(site, "staff")
    answer = upload(staff, "cases.csv", csv_bytes(*GOOD_ROWS), dry_run="1")
    assert answer.status_code == 200
    assert "只做了检查" in answer.text
    assert site.store.count_cases() == 0 and site.store.case_imports() == []


def test_a_gbk_csv_from_chinese_excel_lands(site: Site) -> None:
    staff = signed_in(site, "staff")
    answer = upload(staff, "gbk.csv", csv_bytes(*GOOD_ROWS, encoding="gbk"))
    assert answer.status_code == 200, answer.text
    narratives = {c.narrative for c in site.store.list_cases()}
    assert "在家接到电话被骗" in narratives


def test_an_xlsx_workbook_lands(site: Site) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "案件"
    sheet.append(["三月电诈案件汇总"])  # a title row above the header is skipped
    sheet.append(HEADER.split(","))
    for row in GOOD_ROWS[:2]:
        sheet.append(row.split(","))
    buffer = io.BytesIO()
    book.save(buffer)
    staff = signed_in(site, "staff")
    answer = upload(staff, "cases.xlsx", buffer.getvalue())
    assert answer.status_code == 200, answer.text
    assert site.store.count_cases() == 2
    assert {c.row_number for c in site.store.list_cases()} == {3, 4}


def test_row_errors_are_listed_in_chinese_and_nothing_is_imported(site: Site) -> None:
    staff = signed_in(site, "staff")
    rows = [
        GOOD_ROWS[0],
        "B002,2099-01-01 10:00,刷单返利,100,30,女,将来的案件",
        "B003,2024-03-01 10:00,<script>alert(1)</script>,100,30,女,类型不对",
        "B004,2024-03-01 11:00,刷单返利,100,30,不知道,性别不对",
    ]
    answer = upload(staff, "bad.csv", csv_bytes(*rows))
    assert answer.status_code == 400
    text = answer.text
    assert "整个文件都没有导入" in text
    assert "第 3 行" in text and "时间在将来" in text
    assert "第 4 行" in text and "不认识这种诈骗类型" in text
    assert "第 5 行" in text and "性别请写" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<script>alert(1)</script>" not in text
    assert site.store.count_cases() == 0


def test_rows_missing_a_field_are_imported_and_listed_to_complete(site: Site) -> None:
    staff = signed_in(site, "staff")
    answer = upload(staff, "cases.csv", csv_bytes(GOOD_ROWS[0], "C002,2024-03-02,刷单返利,,,,"))
    assert answer.status_code == 200, answer.text
    assert "第 3 行" in answer.text and "案发时间" in answer.text
    assert site.store.count_cases(incomplete=True) == 1
    assert "有 <strong>1</strong> 个案件缺少" in staff.get("/cases/import").text


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("cases.csv", b"", "是空文件"),
        ("photo.png", b"\x89PNG\r\n\x1a\n", "只能导入 CSV 或 XLSX 文件"),
        ("cases.xlsx", b"PK\x03\x04 not really a workbook", "XLSX 文件损坏"),
        ("old.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "旧版 Excel"),
        ("cases.csv", "\n".join(["名字,电话", "王,1"]).encode(), "表头缺少需要的列"),
        ("cases.csv", csv_bytes(), "只有表头"),
        ("cases.csv", "案发时间,诈骗类型\n2024年3月1日 10点,刷单".encode("utf-16-le"), "不是文本"),
    ],
)
def test_unusable_files_are_refused_with_a_message(
    site: Site, name: str, data: bytes, message: str
) -> None:
    staff = signed_in(site, "staff")
    answer = upload(staff, name, data)
    assert answer.status_code == 400
    assert message in answer.text
    assert "Traceback" not in answer.text
    assert site.store.count_cases() == 0


def test_no_file_chosen_is_refused(site: Site) -> None:
    staff = signed_in(site, "staff")
    token = csrf(staff, "/cases/import")
    answer = staff.post("/cases/import", data={"csrf_token": token})
    assert answer.status_code == 400 and "请先选择要导入的案件文件" in answer.text
    browser = staff.post(  # a browser sends an empty part when no file is picked
        "/cases/import",
        data={"csrf_token": token},
        files={"file": ("", b"", "application/octet-stream")},
    )
    assert browser.status_code == 400 and "请先选择要导入的案件文件" in browser.text


def test_a_file_over_20_mb_is_refused(site: Site) -> None:
    staff = signed_in(site, "staff")
    big = csv_bytes(*GOOD_ROWS) + b"x" * (MAX_UPLOAD_BYTES + 1)
    answer = upload(staff, "big.csv", big)
    assert answer.status_code == 400 and "文件太大了" in answer.text
    assert site.store.count_cases() == 0


def test_a_hostile_file_name_is_shown_escaped(site: Site) -> None:
    staff = signed_in(site, "staff")
    name = "<img src=x onerror=alert(1)>.csv"
    answer = upload(staff, name, csv_bytes(*GOOD_ROWS))
    assert answer.status_code == 200
    assert "&lt;img src=x onerror=alert(1)&gt;.csv" in answer.text
    assert "<img src=x" not in answer.text
    assert "<img src=x" not in staff.get("/cases/import").text


def test_narratives_without_a_type_column_need_the_running_classifier(store: Store) -> None:
    # Nothing listens on port 9: the page says what to do instead of starting Rasa itself.
    site = make_site(store, replace(Settings(), rasa_url="http://127.0.0.1:9"))
    staff = signed_in(site, "staff")
    data = csv_bytes(
        "2024年3月1日上午10点，受害人接到自称客服的电话，被骗5000元。", header="简要案情"
    )
    answer = upload(staff, "narratives.csv", data)
    assert answer.status_code == 400
    assert "需要用识别模型读出类型" in answer.text
    assert store.count_cases() == 0

"""Case import, for admins and staff: upload a CSV or XLSX case file, see what it did.

The upload goes through the same code path as ``antifraud cases import`` (``campaigns.importer``
reads, maps and checks the file; ``store.import_cases`` writes it whole or not at all), so the
dashboard and the command line accept and refuse the same files. A file with any row error
imports nothing and lists every error. A file with narratives and no scam type column needs the
classifier: it is used when the Rasa server is up, never started from a web request.

The importer words its problems in English for the command line; this page says them in
Chinese (``file_problem``, ``row_problem``) and keeps the importer's own words beside them, small,
for whoever fixes the file. The upload is read in memory (at most 20 MB) and its spooled copy is
closed, and so removed, before the answer goes out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from bot.dashboard.web import MAX_UPLOAD_BYTES, STAFF_ROLES, Dashboard
from bot.store.accounts import SignedIn
from bot.store.cases import ImportResult
from campaigns.importer import (
    Draft,
    ImportFileError,
    RowError,
    ScamTypeNames,
    check_rows,
    classify_drafts,
    classify_narrative,
    file_sha256,
    map_columns,
    read_table,
    to_new_cases,
)

FILE_FIELD = "file"
SUFFIXES = (".csv", ".xlsx", ".xlsm")
RECENT_IMPORTS = 20
MAX_ERRORS_SHOWN = 500
MAX_SHEET_CHARS = 100
SAVE_ADVICE = "请在 Excel 里“另存为” CSV UTF-8（逗号分隔）或 .xlsx 文件后再上传。"

#: The fields of a case as the importer names them in its errors, in Chinese.
FIELD_NAMES = {
    "case_number": "案件编号",
    "happened_at": "案发时间",
    "scam_type": "诈骗类型",
    "loss": "损失金额",
    "age": "年龄",
    "gender": "性别",
    "occupation": "职业",
    "place": "发案地点",
    "residence": "户籍",
    "narrative": "简要案情",
}

# What a file-level problem means, by the words of the importer's message (first match wins).
_FILE_PROBLEMS = (
    ("the file is empty", "文件是空的，没有表头也没有案件。"),
    ("NUL", "这不是文本格式的 CSV 文件（可能是 UTF-16 编码，或者根本不是表格）。"),
    ("known encoding", "认不出文件的编码（支持 UTF-8、带 BOM 的 UTF-8 和 GBK/GB18030）。"),
    ("starts like", "文件开头像 UTF 编码，后面却不是，文件可能已损坏。"),
    ("not a readable XLSX", "这个 XLSX 文件损坏了，或者不是真正的 Excel 工作簿。"),
    ("old Excel .xls", "这是旧版 Excel（.xls）文件，系统读不了。"),
    ("named like a workbook", "文件名是 .xlsx，内容却不是 Excel 工作簿。"),
    ("no sheet named", "工作簿里没有这个名字的工作表。"),
    ("has no sheets", "工作簿里没有工作表。"),
    ("not readable as CSV", "CSV 格式有错（多半是引号没有配对），读不下去。"),
    ("both mean", "有两列表示同一项内容，请只保留其中一列。"),
    (
        "missing columns",
        "表头缺少需要的列：要有“案发时间”和“诈骗类型”两列，或者有“简要案情”一列。",
    ),
    ("is for XLSX", "只有 XLSX 工作簿才能选工作表，这是 CSV 文件，请把工作表留空。"),
)

_HEADER_PROBLEMS = ("both mean", "missing columns", "is for XLSX")

# What a row's problem means, by the words of the importer's reason (first match wins).
_ROW_PROBLEMS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), text)
    for pattern, text in (
        (r"is in the future", "时间在将来，请检查日期。"),
        (r"is before 2000", "时间早于 2000 年，请检查日期。"),
        (r"longer than ([\d,]+) characters", "内容太长，最多 {0} 个字。"),
        (
            r"unknown scam type",
            "不认识这种诈骗类型，请写“刷单返利”“冒充公检法”“杀猪盘”这样的名称。",
        ),
        (r"is not a scam type", "这一行写的不是诈骗（案件文件只列诈骗案件）。"),
        (r"negative amount", "金额不能是负数。"),
        (r"not an amount of money", "这不是金额，请写数字，如 5000 或 1.2万。"),
        (r"believable", "金额大得不合理，请检查。"),
        (r"is not a gender", "性别请写“男”或“女”。"),
        (r"spans several age bands", "这个年龄段跨了好几个年龄组，请写具体年龄。"),
        (r"age|outside 0-120", "年龄看不懂，或者不在 0 到 120 岁之间。"),
        (r"without a date|no full date", "只有时间没有完整日期，请写成 2024-03-01 10:30。"),
        (r"as a date", "看不懂这个日期时间，请写成 2024-03-01 10:30。"),
    )
)


def file_problem(exc: ImportFileError) -> str:
    """A file-level refusal in Chinese, with what to do."""
    detail = str(exc)
    for words, meaning in _FILE_PROBLEMS:
        if words in detail:
            return meaning if words in _HEADER_PROBLEMS else meaning + SAVE_ADVICE
    return f"这个文件读不了。{SAVE_ADVICE}"


def row_problem(error: RowError) -> str:
    """One row's problem in Chinese."""
    for pattern, meaning in _ROW_PROBLEMS:
        found = pattern.search(error.reason)
        if found:
            return meaning.format(*found.groups())
    return f"{FIELD_NAMES.get(error.field, error.field)}填得不对。"


@dataclass(frozen=True)
class RowProblem:
    row: int
    field: str  # in Chinese
    problem: str  # in Chinese
    detail: str  # the importer's own words


class Refused(Exception):
    """The upload cannot be imported; the message (Chinese) says why and what to do."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class Outcome:
    """What one upload did: the rows with errors (nothing imported) or the store's result."""

    file_name: str
    rows: int
    errors: tuple[RowProblem, ...] = ()
    error_rows: int = 0
    result: ImportResult | None = None
    classified: int = 0
    asked: int = 0


async def _upload(request: Request, dash: Dashboard) -> tuple[bytes, str, str | None, bool]:
    """The file's bytes and name, the sheet asked for and whether it is a dry run."""
    form = await dash.form(request)
    upload = form.get(FILE_FIELD)
    sheet_value = form.get("sheet")
    sheet = sheet_value.strip()[:MAX_SHEET_CHARS] if isinstance(sheet_value, str) else ""
    dry_run = form.get("dry_run") == "1"
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise Refused("请先选择要导入的案件文件（CSV 或 XLSX）。")
        name = upload.filename.replace("\\", "/").rsplit("/", 1)[-1][:255] or "upload"
        if not name.lower().endswith(SUFFIXES):
            raise Refused(f"只能导入 CSV 或 XLSX 文件，“{name}”不是。{SAVE_ADVICE}")
        if upload.size is not None and upload.size > MAX_UPLOAD_BYTES:
            raise Refused(
                f"文件太大了：最大 {MAX_UPLOAD_BYTES // (1024 * 1024)} MB，请分成几个文件。"
            )
        data = await upload.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise Refused(
                f"文件太大了：最大 {MAX_UPLOAD_BYTES // (1024 * 1024)} MB，请分成几个文件。"
            )
        if not data.strip():
            raise Refused(f"“{name}”是空文件，里面没有内容。")
        return data, name, sheet or None, dry_run
    finally:
        # The spooled upload (in memory, or a temporary file past 1 MB) goes away now.
        await form.close()


async def _classify(dash: Dashboard, drafts: list[Draft]) -> int:
    """The scam type of the narratives that need one, as ``antifraud cases import`` reads them;
    ``Refused`` when the classifier is not running (a web request never starts it)."""
    from bot.nlp.analysis import get_analyzer
    from bot.nlp.classify import Classifier
    from bot.nlp.rasa_server import RasaClient, RasaUnavailable

    settings = dash.settings
    refusal = Refused(
        "这个文件有“简要案情”但没有“诈骗类型”列，需要用识别模型读出类型，而模型现在没有运行，"
        "所以没有导入。请加上“诈骗类型”列再上传，或者等系统完全启动后再试。"
    )
    try:
        async with RasaClient(settings.rasa_url, timeout=settings.rasa_request_timeout) as rasa:
            if not await rasa.is_ready():
                raise refusal
            analyzer = await dash.call(get_analyzer, settings.taxonomy_path, settings.lookups_dir)
            classifier = Classifier(rasa, analyzer, dash.taxonomy, settings.scam_threshold)

            async def classify(text: str) -> str | None:
                return await classify_narrative(classifier, text)

            return await classify_drafts(
                drafts, classify, concurrency=settings.classify_concurrency
            )
    except (RasaUnavailable, OSError) as exc:
        raise refusal from exc


async def run_import(
    dash: Dashboard, data: bytes, name: str, sheet: str | None, actor: str, dry_run: bool
) -> Outcome:
    """Read, check, classify if needed and store one file; ``Refused`` for a file-level problem."""
    try:
        table = await dash.call(read_table, data, name, sheet)
        columns = map_columns(table)
    except ImportFileError as exc:
        raise Refused(file_problem(exc), str(exc)) from exc
    if not table.rows:
        raise Refused(f"“{name}”只有表头，下面没有案件。")
    names = ScamTypeNames(dash.taxonomy)
    checked = await dash.call(check_rows, table, columns, names)
    if checked.errors:
        problems = tuple(
            RowProblem(e.row, FIELD_NAMES.get(e.field, e.field), row_problem(e), e.reason)
            for e in checked.errors[:MAX_ERRORS_SHOWN]
        )
        return Outcome(
            name,
            len(table.rows),
            errors=problems,
            error_rows=len({e.row for e in checked.errors}),
        )
    asked = checked.to_classify
    classified = await _classify(dash, checked.drafts) if asked else 0
    result = await dash.call(
        dash.store.import_cases,
        to_new_cases(checked.drafts),
        file_name=name,
        file_sha256=file_sha256(data),
        actor=actor,
        dry_run=dry_run,
    )
    return Outcome(name, len(table.rows), result=result, classified=classified, asked=asked)


def routes(dash: Dashboard) -> list[BaseRoute]:
    async def page_context() -> dict[str, object]:
        imports = await dash.call(dash.store.case_imports)
        incomplete = await dash.call(dash.store.count_cases, incomplete=True)
        return {
            "imports": list(reversed(imports))[:RECENT_IMPORTS],
            "incomplete": incomplete,
            "field_names": FIELD_NAMES,
            "max_mb": MAX_UPLOAD_BYTES // (1024 * 1024),
        }

    async def show(request: Request, me: SignedIn) -> Response:
        return dash.render(
            request, "cases_import.html", me, problem="", detail="", **(await page_context())
        )

    async def upload(request: Request, me: SignedIn) -> Response:
        try:
            data, name, sheet, dry_run = await _upload(request, dash)
            outcome = await run_import(dash, data, name, sheet, dash.actor(me), dry_run)
        except Refused as refused:
            return dash.render(
                request,
                "cases_import.html",
                me,
                status_code=400,
                problem=str(refused),
                detail=refused.detail,
                **(await page_context()),
            )
        return dash.render(
            request,
            "cases_import_result.html",
            me,
            status_code=400 if outcome.errors else 200,
            outcome=outcome,
            problem="",
            detail="",
            **(await page_context()),
        )

    return [
        dash.page("/cases/import", show, roles=STAFF_ROLES, name="cases_import"),
        dash.page(
            "/cases/import", upload, roles=STAFF_ROLES, methods=("POST",), name="cases_upload"
        ),
    ]

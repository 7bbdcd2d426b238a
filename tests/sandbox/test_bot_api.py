"""The Bot API methods through python-telegram-bot's ``Bot`` and through raw HTTP.

PTB shows what a bot will see (exception classes, de_json'd objects); raw HTTP pins the exact
status codes, Telegram's descriptions and the four ways parameters can be sent.
"""

from __future__ import annotations

import json

import httpx
import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeChat,
    BotCommandScopeChatMember,
    ChatMemberAdministrator,
    ChatMemberLeft,
    ChatMemberMember,
    ChatMemberOwner,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    ReplyParameters,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, EndPointNotFound, Forbidden, InvalidToken

from tests.sandbox.conftest import AUNTIE, GROUP, PRIVATE, UNCLE
from tests.sandbox.helpers import TOKEN, Control

pytestmark = pytest.mark.anyio


async def raw(
    control: Control, method: str, token: str = TOKEN, **kwargs: object
) -> httpx.Response:
    return await control.client.post(f"/sandbox/bot{token}/{method}", **kwargs)  # type: ignore[arg-type]


async def test_get_me_is_the_sandbox_bot(control: Control, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.username == "antifraud_sandbox_bot"
    assert me.first_name == "反诈助手"
    assert me.is_bot and me.id == 123456789  # the id is the token's first part, as on Telegram


async def test_commands_with_chinese_descriptions_round_trip(control: Control, bot: Bot) -> None:
    commands = [BotCommand("check", "检查一条可疑消息"), BotCommand("report", "我要举报")]
    assert await bot.set_my_commands(commands)
    assert await bot.get_my_commands() == tuple(commands)
    group_only = [BotCommand("help", "群里怎么用")]
    await bot.set_my_commands(group_only, scope=BotCommandScopeAllGroupChats(), language_code="zh")
    assert await bot.get_my_commands(scope=BotCommandScopeAllGroupChats()) == ()
    zh = await bot.get_my_commands(scope=BotCommandScopeAllGroupChats(), language_code="zh")
    assert zh == tuple(group_only)
    assert await bot.delete_my_commands()
    assert await bot.get_my_commands() == ()
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Check!", "大写和标点不行")])
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.set_my_commands(commands, scope=BotCommandScopeChat(-999))


async def test_bad_input_is_refused_with_telegrams_words(control: Control, bot: Bot) -> None:
    await control.send(PRIVATE, AUNTIE, text="你好")
    cases = [
        ({"chat_id": 42, "text": ""}, "Bad Request: message text is empty"),
        ({"chat_id": 42, "text": "   \n"}, "Bad Request: message text is empty"),
        ({"chat_id": 42, "text": "长" * 5000}, "Bad Request: message is too long"),
        ({"chat_id": 999, "text": "hi"}, "Bad Request: chat not found"),
        ({"text": "hi"}, "Bad Request: chat_id is empty"),
        (
            {"chat_id": 42, "text": "hi", "reply_parameters": {"message_id": 77}},
            "Bad Request: message to be replied not found",
        ),
        (
            {"chat_id": 42, "text": "<b>警告</i>", "parse_mode": "HTML"},
            "Bad Request: can't parse entities: Unmatched end tag at byte offset 9, "
            'expected "</b>", found "</i>"',
        ),
        (
            {"chat_id": 42, "text": "<script>alert(1)</script>", "parse_mode": "HTML"},
            'Bad Request: can\'t parse entities: Unsupported start tag "script" at byte offset 0',
        ),
        (
            {"chat_id": 42, "text": "x", "reply_markup": {"inline_keyboard": [[{"text": "a"}]]}},
            "Bad Request: text buttons are unallowed in the inline keyboard",
        ),
        (
            {
                "chat_id": 42,
                "text": "x",
                "reply_markup": {"inline_keyboard": [[{"text": "a", "callback_data": "x" * 65}]]},
            },
            "Bad Request: BUTTON_DATA_INVALID",
        ),
        (
            {"chat_id": 42, "text": "x", "reply_markup": "{broken"},
            "Bad Request: can't parse reply keyboard markup JSON object",
        ),
    ]
    for body, description in cases:
        response = await raw(control, "sendMessage", json=body)
        assert response.status_code == 400, body
        assert response.json() == {"ok": False, "error_code": 400, "description": description}

    assert len(await control.messages(42)) == 1  # nothing was stored

    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(42, "")
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(42, "x" * 4097)
    assert (await bot.send_message(42, "x" * 4096)).text == "x" * 4096
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(-1999, "hi")
    with pytest.raises(BadRequest, match="Message to be replied not found"):
        await bot.send_message(42, "hi", reply_parameters=ReplyParameters(55))
    sent = await bot.send_message(
        42, "hi", reply_parameters=ReplyParameters(55, allow_sending_without_reply=True)
    )
    assert sent.reply_to_message is None


async def test_hostile_html_is_stored_verbatim(control: Control, bot: Bot) -> None:
    await control.send(PRIVATE, AUNTIE, text="你好")
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)> & "引号"'
    sent = await bot.send_message(42, hostile)
    assert sent.text == hostile
    html = '<b>高风险</b> <a href="https://96110.cn/?a=1&amp;b=2">96110</a> &lt;别转账&gt;'
    formatted = await bot.send_message(42, html, parse_mode=ParseMode.HTML)
    assert formatted.text == html
    stored = await control.messages(42, since=1)
    assert [(m["text"], m["parse_mode"]) for m in stored] == [(hostile, None), (html, "HTML")]
    # The 4096 limit counts the visible text: tags and entities do not count.
    assert await bot.send_message(42, "<b>" + "长" * 4096 + "</b>", parse_mode=ParseMode.HTML)


async def test_incoming_user_input_is_checked_and_kept(control: Control) -> None:
    hostile = "<b>不是HTML</b> &amp; 😀 @antifraud_sandbox_bot"
    message = (await control.send(PRIVATE, AUNTIE, text=hostile))["message"]
    assert message["text"] == hostile
    assert message["entities"] == [{"type": "mention", "offset": 23, "length": 22}]  # 😀 is 2
    for body, description in [
        ({"text": ""}, "Bad Request: message text is empty"),
        ({"text": "x" * 4097}, "Bad Request: message is too long"),
        ({"text": "x", "reply_to_message_id": 99}, "Bad Request: message to be replied not found"),
        ({"photo": "bm90IGFuIGltYWdl"}, "Bad Request: photo must be a PNG or JPEG image"),
    ]:
        error = await control.post(
            "/sandbox/send", {"chat": PRIVATE, "from": AUNTIE, **body}, status=400
        )
        assert error["description"] == description
    error = await control.post(
        "/sandbox/send", {"chat": {"id": 43, "type": "private"}, "from": AUNTIE, "text": "x"}, 400
    )
    assert "private chat's id is its user's id" in error["description"]


async def test_tokens_methods_and_parameter_encodings(control: Control) -> None:
    await control.send(PRIVATE, AUNTIE, text="你好")
    wrong = await raw(control, "getMe", token="1:wrong")
    assert (wrong.status_code, wrong.json()["description"]) == (401, "Unauthorized")
    unknown = await raw(control, "sendTelepathy", json={})
    assert (unknown.status_code, unknown.json()["description"]) == (404, "Not Found")
    # Method names are case-insensitive, as on Telegram.
    assert (await raw(control, "getme")).json()["result"]["username"] == "antifraud_sandbox_bot"

    markup = {"inline_keyboard": [[{"text": "订阅", "callback_data": "/subscribe"}]]}
    by_json = await raw(
        control, "sendMessage", json={"chat_id": 42, "text": "json", "reply_markup": markup}
    )
    by_form = await raw(
        control,
        "sendMessage",
        data={"chat_id": "42", "text": "表单", "reply_markup": json.dumps(markup)},
    )
    by_multipart = await raw(
        control,
        "sendMessage",
        data={"chat_id": "42", "text": "multipart"},
        files={"unused": ("a.txt", b"x")},
    )
    by_query = await control.client.get(
        f"/sandbox/bot{TOKEN}/sendMessage", params={"chat_id": 42, "text": "查询"}
    )
    for response, text in [
        (by_json, "json"),
        (by_form, "表单"),
        (by_multipart, "multipart"),
        (by_query, "查询"),
    ]:
        assert response.status_code == 200, response.text
        assert response.json()["ok"] is True
        assert response.json()["result"]["text"] == text
    assert by_form.json()["result"]["reply_markup"] == markup
    bad = await raw(
        control, "sendMessage", json={"chat_id": 42, "text": "x", "reply_to_message_id": "abc"}
    )
    assert (
        bad.json()["description"]
        == 'Bad Request: field "reply_to_message_id" must be of type Integer'
    )
    broken = await raw(
        control, "sendMessage", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400


async def test_chats_members_actions_deletion_and_leaving(control: Control, bot: Bot) -> None:
    await control.send(GROUP, AUNTIE, text="大家好")
    await control.send(GROUP, UNCLE, text="收到")
    chat = await bot.get_chat(GROUP["id"])
    assert (chat.title, chat.type) == ("幸福村3组网格群", "supergroup")
    assert isinstance(await bot.get_chat_member(GROUP["id"], 42), ChatMemberOwner)
    assert isinstance(await bot.get_chat_member(GROUP["id"], 43), ChatMemberMember)
    me = await bot.get_chat_member(GROUP["id"], bot.id)
    assert isinstance(me, ChatMemberAdministrator) and me.can_delete_messages
    admins = await bot.get_chat_administrators(GROUP["id"])
    assert {admin.user.id for admin in admins} == {42, bot.id}
    with pytest.raises(BadRequest, match="User not found"):
        await bot.get_chat_member(GROUP["id"], 4242)

    assert await bot.send_chat_action(GROUP["id"], ChatAction.TYPING)
    listed = (await control.get("/sandbox/chats"))["chats"]
    assert listed[0]["action"] == "typing"
    with pytest.raises(BadRequest, match="Wrong parameter action"):
        await bot.send_chat_action(GROUP["id"], "dancing")

    assert await bot.delete_message(GROUP["id"], 2)
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(GROUP["id"], 2)
    messages = await control.messages(GROUP["id"])
    assert [m["deleted"] for m in messages] == [False, True]

    warning = await bot.send_message(
        GROUP["id"],
        "⚠️ 这是诈骗",
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("详情", callback_data="d")]]),
    )
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_reply_markup(
            GROUP["id"], warning.message_id, reply_markup=warning.reply_markup
        )
    cleared = await bot.edit_message_reply_markup(GROUP["id"], warning.message_id)
    assert isinstance(cleared, type(warning)) and cleared.reply_markup is None
    with pytest.raises(BadRequest, match="Message can't be edited"):
        await bot.edit_message_text("改别人的话", GROUP["id"], 1)

    assert await bot.leave_chat(GROUP["id"])
    with pytest.raises(Forbidden, match="bot is not a member of the supergroup chat"):
        await bot.send_message(GROUP["id"], "还在吗")
    after = await control.send(GROUP, AUNTIE, text="机器人走了")
    assert after["update_id"] is None  # a group the bot left does not reach it


async def test_ptb_sees_unknown_token_and_method(control: Control, base_url: str) -> None:
    stranger = Bot("1:not-the-token", base_url=base_url)
    with pytest.raises(InvalidToken):
        await stranger.initialize()
    await stranger.shutdown()
    async with Bot(TOKEN, base_url=base_url) as bot:
        with pytest.raises(EndPointNotFound):
            await bot.do_api_request("sendTelepathy", api_kwargs={"chat_id": 42})


async def test_malformed_bot_api_calls_are_400_never_500(control: Control) -> None:
    await control.send(PRIVATE, AUNTIE, text="你好")
    surrogate = b'{"chat_id": 42, "text": "\\ud800"}'
    in_markup = {
        "chat_id": 42,
        "text": "x",
        "reply_markup": '{"inline_keyboard": [[{"text": "\\udc00", "callback_data": "d"}]]}',
    }
    for method, body, description in [
        ("sendMessage", surrogate, "Bad Request: strings must be encoded in UTF-8"),
        ("sendMessage", in_markup, "Bad Request: strings must be encoded in UTF-8"),
        ("sendMessage", b"[1]", "Bad Request: JSON request body must be an object"),
        ("sendMessage", {"chat_id": 42, "text": {"a": 1}}, 'field "text" must be of type String'),
        ("getUpdates", {"timeout": "nan"}, 'Bad Request: field "timeout" must be a finite number'),
        (
            "getUpdates",
            b'{"timeout": 1e999}',
            'Bad Request: field "timeout" must be a finite number',
        ),
        ("getUpdates", {"limit": "many"}, 'Bad Request: field "limit" must be of type Integer'),
        ("getUpdates", {"allowed_updates": 5}, "Bad Request: can't parse allowed updates JSON"),
        (
            "setMyCommands",
            {"commands": [{"command": "a", "description": "b"}], "scope": {"type": ["chat"]}},
            "Bad Request: can't parse BotCommandScope JSON object",
        ),
        (
            "setMyCommands",
            {"commands": [{"command": "a", "description": "b"}], "scope": []},
            "Bad Request: can't parse BotCommandScope JSON object",
        ),
        ("getChatMember", {"chat_id": 42, "user_id": "王"}, 'field "user_id" must be of type'),
        ("answerCallbackQuery", {"callback_query_id": ["x"]}, 'field "callback_query_id" must'),
        ("getFile", {"file_id": "no-such-file"}, "Bad Request: invalid file_id"),
    ]:
        if isinstance(body, bytes):
            headers = {"content-type": "application/json"}
            response = await raw(control, method, content=body, headers=headers)
        else:
            response = await raw(control, method, json=body)
        assert response.status_code == 400, (method, body, response.text)
        assert description in response.json()["description"], (method, body)
    # Nothing above was stored: the chat still reads back.
    assert [m["text"] for m in await control.messages(42)] == ["你好"]


async def test_chat_methods_for_private_chats_strangers_and_a_left_group(
    control: Control, bot: Bot
) -> None:
    await control.send(PRIVATE, AUNTIE, text="你好")
    await control.send(GROUP, UNCLE, text="大家好")
    private = await bot.get_chat(42)
    assert (private.type, private.first_name, private.title) == ("private", "王阿姨", None)
    group = await bot.get_chat(GROUP["id"])
    assert (group.type, group.title, group.id) == ("supergroup", "幸福村3组网格群", GROUP["id"])
    assert isinstance(await bot.get_chat_member(42, 42), ChatMemberMember)
    assert isinstance(await bot.get_chat_member(GROUP["id"], 43), ChatMemberOwner)
    # 王阿姨 exists (she wrote privately) but never joined the group.
    assert isinstance(await bot.get_chat_member(GROUP["id"], 42), ChatMemberLeft)
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.get_chat(-123)
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.get_chat_member(-123, 42)
    with pytest.raises(BadRequest, match="There are no administrators in the private chat"):
        await bot.get_chat_administrators(42)
    with pytest.raises(BadRequest, match="Chat member status can't be changed in private chats"):
        await bot.leave_chat(42)
    assert await bot.leave_chat(GROUP["id"])
    with pytest.raises(Forbidden, match="bot is not a member of the supergroup chat"):
        await bot.get_chat(GROUP["id"])


async def test_commands_per_chat_and_member_and_their_limits(control: Control, bot: Bot) -> None:
    await control.send(GROUP, AUNTIE, text="大家好")
    in_group = [BotCommand("report", "向网格员举报")]
    for_auntie = [BotCommand("help", "王阿姨的帮助")]
    assert await bot.set_my_commands(in_group, scope=BotCommandScopeChat(GROUP["id"]))
    assert await bot.set_my_commands(for_auntie, scope=BotCommandScopeChatMember(GROUP["id"], 42))
    assert await bot.get_my_commands(scope=BotCommandScopeChat(GROUP["id"])) == tuple(in_group)
    got = await bot.get_my_commands(scope=BotCommandScopeChatMember(GROUP["id"], 42))
    assert got == tuple(for_auntie)
    assert await bot.get_my_commands() == ()  # the default scope is separate
    listed = (await control.get("/sandbox/bot"))["commands"]
    assert {(c["scope"]["type"], c["commands"][0]["command"]) for c in listed} == {
        ("chat", "report"),
        ("chat_member", "help"),
    }
    # An empty list removes the commands of that scope.
    assert await bot.set_my_commands([], scope=BotCommandScopeChat(GROUP["id"]))
    assert await bot.get_my_commands(scope=BotCommandScopeChat(GROUP["id"])) == ()

    with pytest.raises(BadRequest, match="Too many commands specified"):
        await bot.set_my_commands([BotCommand(f"c{i}", "说明") for i in range(101)])
    with pytest.raises(BadRequest, match="Bot_command_description_invalid"):
        await bot.set_my_commands([BotCommand("check", "长" * 257)])
    with pytest.raises(BadRequest, match="Invalid language code specified"):
        await bot.set_my_commands(in_group, language_code="zh-CN")
    with pytest.raises(BadRequest, match="User not found"):
        await bot.set_my_commands(in_group, scope=BotCommandScopeChatMember(GROUP["id"], 4242))
    assert await bot.get_my_commands() == ()


async def test_edits_and_callback_answers_are_checked(control: Control, bot: Bot) -> None:
    await control.send(PRIVATE, AUNTIE, text="这是诈骗吗")
    buttons = InlineKeyboardMarkup([[InlineKeyboardButton("是诈骗", callback_data="/fraud")]])
    warning = await bot.send_message(42, "正在核实……", reply_markup=buttons)
    edited = await bot.edit_message_text(
        "<b>高风险</b>：请勿转账", 42, warning.message_id, parse_mode=ParseMode.HTML,
        reply_markup=buttons,
    )  # fmt: skip
    assert isinstance(edited, type(warning)) and edited.text == "<b>高风险</b>：请勿转账"
    assert edited.reply_markup == buttons
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text(
            "<b>高风险</b>：请勿转账", 42, warning.message_id, parse_mode=ParseMode.HTML,
            reply_markup=buttons,
        )  # fmt: skip
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", 42, 99)
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.edit_message_text(" ", 42, warning.message_id)
    stored = (await control.messages(42, since=1))[0]
    assert [e["text"] for e in stored["edits"]] == ["正在核实……"]

    press = await control.press(42, warning.message_id, "/fraud", AUNTIE)
    query_id = press["callback_query"]["id"]
    assert await bot.answer_callback_query(query_id, "已记录", show_alert=True)
    answered = await control.get(f"/sandbox/callbacks/{query_id}")
    assert answered["answer"]["text"] == "已记录" and answered["answer"]["show_alert"] is True
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query(query_id, "第二次")
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query("12345", "不存在")

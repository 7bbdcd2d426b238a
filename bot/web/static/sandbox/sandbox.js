/*
 * The sandbox page: a person plays residents of a few grid groups (and a private chat) against
 * the local sandbox Bot API. It talks only to the sandbox's control endpoints on this origin:
 *   POST /sandbox/send                      a message, photo or button press from a resident
 *   GET  /sandbox/chats                     every chat the sandbox knows (titles, counts, typing)
 *   GET  /sandbox/chats/{id}/messages       every message of a chat, both directions, in order
 *   POST /sandbox/reset                     forget everything
 * and polls the messages about every 700 ms (a long poll when the server supports one).
 *
 * Safety: text from messages reaches the page only through textContent / createTextNode. Bot
 * messages sent with parse_mode HTML are parsed here by a small tokenizer that builds elements
 * for Telegram's few allowed tags; anything else shows as the literal text. innerHTML is never
 * used, and the page's Content-Security-Policy forbids inline script besides.
 */
(() => {
  "use strict";

  const BODY = document.body;
  let BOT_USERNAME = BODY.dataset.botUsername || "antifraud_sandbox_bot";
  let BOT_NAME = BODY.dataset.botName || "反诈助手";
  const POLL_MS = 700;
  const CHATS_EVERY_MS = 2500;
  const REQUEST_TIMEOUT_MS = 8000;
  const LONG_POLL_SECONDS = 25;
  const LONG_POLL_MS = (LONG_POLL_SECONDS + 10) * 1000;
  const MAX_PHOTO_BYTES = 10 * 1024 * 1024;

  const PERSONAS = [
    { id: 1001, first_name: "王阿姨", note: "60岁" },
    { id: 1002, first_name: "李大爷", note: "" },
    { id: 1003, first_name: "小张", note: "学生" },
    { id: 1004, first_name: "陈女士", note: "" },
  ];
  const GROUPS = [
    { id: -1001001, type: "supergroup", title: "幸福村3组网格群" },
    { id: -1001002, type: "supergroup", title: "阳光小区2号楼群" },
    { id: -1001003, type: "supergroup", title: "新居民互助群" },
  ];
  const PALETTE = ["#d9822b", "#2d7dd2", "#8e5bd6", "#c2465d", "#2a9d8f", "#6d8b2f", "#b5651d"];

  const $ = (id) => document.getElementById(id);
  const ui = {
    app: $("app"),
    sidebar: $("sidebar"),
    scrim: $("scrim"),
    openSidebar: $("open-sidebar"),
    userPicker: $("user-picker"),
    chatList: $("chat-list"),
    reset: $("reset"),
    title: $("conv-title"),
    sub: $("conv-sub"),
    me: $("me-badge"),
    offline: $("offline"),
    messages: $("messages"),
    empty: $("empty"),
    replyKeyboard: $("reply-keyboard"),
    composer: $("composer"),
    replyBar: $("reply-bar"),
    replyBarText: $("reply-bar-text"),
    replyCancel: $("reply-cancel"),
    photoBar: $("photo-bar"),
    photoPreview: $("photo-preview"),
    photoName: $("photo-name"),
    photoCancel: $("photo-cancel"),
    photoInput: $("photo-input"),
    forwardBar: $("forward-bar"),
    forwardName: $("forward-name"),
    mention: $("mention"),
    forward: $("forward"),
    input: $("input"),
    send: $("send"),
    sendError: $("send-error"),
    toast: $("toast"),
  };

  const state = {
    users: PERSONAS.map((p) => ({ ...p })),
    userId: PERSONAS[0].id,
    chatKey: String(GROUPS[0].id), // the selected chat's id, as a string
    serverChats: new Map(), // id (string) -> the sandbox's chat summary
    seen: new Map(), // id (string) -> message count the person has seen
    rendered: new Map(), // message_id -> {sig, el}
    messagesById: new Map(), // message_id -> message (the chat on screen)
    renderedChat: null,
    replyTo: null, // message being replied to
    photo: null, // {base64, name, url}
    forward: false,
    online: true,
    chatListSig: "",
    chatsLoaded: false,
    sending: false,
  };

  // --- small helpers --------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function colorFor(id) {
    const n = Math.abs(Number(id) || 0);
    return PALETTE[n % PALETTE.length];
  }

  function avatar(name, id, isBot) {
    const node = el("div", "avatar", isBot ? "反" : Array.from(name || "?")[0]);
    node.style.background = isBot ? "#1f7a5a" : colorFor(id);
    node.setAttribute("aria-hidden", "true");
    return node;
  }

  function currentUser() {
    return state.users.find((u) => u.id === state.userId) || state.users[0];
  }

  function userLabel(user) {
    return user.note ? `${user.first_name}（${user.note}）` : user.first_name;
  }

  function save() {
    try {
      localStorage.setItem(
        "antifraud-sandbox",
        JSON.stringify({ userId: state.userId, chatKey: state.chatKey }),
      );
    } catch (_err) {
      /* private mode: nothing to remember */
    }
  }

  function restore() {
    try {
      const saved = JSON.parse(localStorage.getItem("antifraud-sandbox") || "null");
      if (saved && state.users.some((u) => u.id === saved.userId)) state.userId = saved.userId;
      if (saved && typeof saved.chatKey === "string") state.chatKey = saved.chatKey;
    } catch (_err) {
      /* ignore a broken entry */
    }
  }

  let toastTimer = 0;
  function toast(text) {
    ui.toast.textContent = text;
    ui.toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => {
      ui.toast.hidden = true;
    }, 2600);
  }

  function setOnline(online) {
    if (state.online === online) return;
    state.online = online;
    ui.offline.hidden = online;
  }

  class HttpError extends Error {
    constructor(status, description) {
      super(description);
      this.status = status;
    }
  }

  /** fetch JSON from this origin; network trouble and 5xx mark the page offline. */
  async function api(path, options = {}, timeoutMs = REQUEST_TIMEOUT_MS) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    const outside = options.signal;
    if (outside) outside.addEventListener("abort", () => controller.abort(), { once: true });
    let response;
    try {
      response = await fetch(path, {
        ...options,
        signal: controller.signal,
        headers: { Accept: "application/json", ...(options.headers || {}) },
        cache: "no-store",
      });
    } catch (_err) {
      if (outside && outside.aborted) throw new HttpError(-1, "已取消");
      setOnline(false);
      throw new HttpError(0, "连不上沙盒服务器");
    } finally {
      clearTimeout(timer);
    }
    let data = null;
    try {
      data = await response.json();
    } catch (_err) {
      data = null;
    }
    if (response.status >= 500 && response.status !== 501) setOnline(false);
    else setOnline(true);
    if (!response.ok || (data && data.ok === false)) {
      const description =
        (data && (data.description || data.error || data.detail)) || `HTTP ${response.status}`;
      throw new HttpError(response.status, String(description));
    }
    return data;
  }

  function unwrap(data, key) {
    if (Array.isArray(data)) return data;
    if (data && Array.isArray(data[key])) return data[key];
    if (data && Array.isArray(data.result)) return data.result;
    return [];
  }

  // --- chats ----------------------------------------------------------------------------

  /** The chats in the list: the three groups, my private chat, then what the sandbox knows. */
  function chatEntries() {
    const me = currentUser();
    const entries = GROUPS.map((g) => ({
      key: String(g.id),
      chat: { id: g.id, type: g.type, title: g.title },
      name: g.title,
      kind: "群聊",
    }));
    entries.push({
      key: String(me.id),
      chat: { id: me.id, type: "private" },
      name: "与反诈助手私聊",
      kind: `私聊 · ${me.first_name}`,
      privateUser: me.id,
    });
    const listed = new Set(entries.map((e) => e.key));
    for (const [key, chat] of state.serverChats) {
      if (listed.has(key)) continue;
      if (chat.type === "private") {
        const name = chat.first_name || `用户${chat.id}`;
        entries.push({
          key,
          chat: { id: chat.id, type: "private" },
          name: `私聊 · ${name}`,
          kind: "与反诈助手私聊",
          privateUser: chat.id,
          privateName: name,
        });
      } else {
        entries.push({
          key,
          chat: { id: chat.id, type: chat.type, title: chat.title || String(chat.id) },
          name: chat.title || String(chat.id),
          kind: chat.type === "group" ? "群组" : "群聊",
        });
      }
    }
    return entries;
  }

  function currentEntry() {
    const entries = chatEntries();
    return entries.find((e) => e.key === state.chatKey) || entries[0];
  }

  function unread(key) {
    const chat = state.serverChats.get(key);
    if (!chat || key === state.chatKey) return 0;
    return Math.max(0, (chat.message_count || 0) - (state.seen.get(key) || 0));
  }

  function renderChatList() {
    const entries = chatEntries();
    const sig = JSON.stringify(
      entries.map((e) => [e.key, e.name, e.kind, unread(e.key), e.key === state.chatKey]),
    );
    if (sig === state.chatListSig) return;
    state.chatListSig = sig;
    const fragment = document.createDocumentFragment();
    for (const entry of entries) {
      const item = el("button", "chat-item");
      item.type = "button";
      item.dataset.chatId = entry.key;
      if (entry.key === state.chatKey) {
        item.classList.add("active");
        item.setAttribute("aria-current", "true");
      }
      const isGroup = entry.chat.type !== "private";
      const face = avatar(isGroup ? entry.name : "反", entry.chat.id, !isGroup);
      const text = el("div", "chat-text");
      text.append(el("div", "chat-name", entry.name), el("div", "chat-meta", entry.kind));
      item.append(face, text);
      const count = unread(entry.key);
      if (count > 0) item.append(el("span", "badge", count > 99 ? "99+" : count));
      item.addEventListener("click", () => selectChat(entry));
      fragment.append(item);
    }
    ui.chatList.replaceChildren(fragment);
  }

  function selectChat(entry) {
    if (entry.privateUser !== undefined && entry.privateUser !== state.userId) {
      // Another resident's private chat: become that resident.
      if (!state.users.some((u) => u.id === entry.privateUser)) {
        state.users.push({ id: entry.privateUser, first_name: entry.privateName, note: "" });
        renderUserPicker();
      }
      state.userId = entry.privateUser;
      ui.userPicker.value = String(state.userId);
    }
    state.chatKey = entry.key;
    closeDrawer();
    save();
    showChat();
  }

  function renderUserPicker() {
    const fragment = document.createDocumentFragment();
    for (const user of state.users) {
      const option = el("option", "", userLabel(user));
      option.value = String(user.id);
      fragment.append(option);
    }
    ui.userPicker.replaceChildren(fragment);
    ui.userPicker.value = String(state.userId);
  }

  function onUserChange() {
    const previous = currentEntry();
    state.userId = Number(ui.userPicker.value);
    // In my private chat, switching who I am opens the new person's private chat.
    if (previous.privateUser !== undefined) state.chatKey = String(state.userId);
    save();
    showChat();
  }

  async function refreshChats() {
    const data = await api("/sandbox/chats");
    const chats = unwrap(data, "chats");
    const fresh = new Map();
    for (const chat of chats) {
      if (chat && chat.id !== undefined) fresh.set(String(chat.id), chat);
    }
    for (const [key, chat] of fresh) {
      // Chats that existed before the page opened are not "unread".
      if (!state.seen.has(key) && !state.serverChats.has(key) && !state.chatsLoaded) {
        state.seen.set(key, chat.message_count || 0);
      } else if (!state.seen.has(key)) {
        state.seen.set(key, 0);
      }
    }
    state.chatsLoaded = true;
    state.serverChats = fresh;
    renderChatList();
    renderHeader();
  }

  function renderHeader() {
    const entry = currentEntry();
    const me = currentUser();
    ui.title.textContent = entry.name;
    ui.me.textContent = `我是 ${me.first_name}`;
    const chat = state.serverChats.get(entry.key);
    const typing =
      chat && chat.action && chat.action_until && chat.action_until * 1000 > Date.now();
    ui.sub.classList.toggle("typing", Boolean(typing));
    if (typing) {
      ui.sub.textContent = `${BOT_NAME}正在${chat.action === "typing" ? "输入" : "处理"}…`;
    } else if (entry.chat.type === "private") {
      ui.sub.textContent = `${BOT_NAME} @${BOT_USERNAME}`;
    } else {
      const members = chat && chat.members ? Object.keys(chat.members).length : 0;
      ui.sub.textContent = members
        ? `群聊 · ${members + 1} 位成员（含${BOT_NAME}）`
        : `群聊 · 群里发言时可以 @${BOT_NAME}`;
    }
    ui.mention.hidden = entry.chat.type === "private";
    ui.input.placeholder =
      entry.chat.type === "private"
        ? `给${BOT_NAME}发消息，Enter 发送，Shift+Enter 换行`
        : `以${me.first_name}的身份在群里发言，Enter 发送，Shift+Enter 换行`;
  }

  // --- Telegram HTML, safely -------------------------------------------------------------

  const NAMED_ENTITIES = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'", nbsp: "\u00a0" };

  function decodeEntities(text) {
    return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, name) => {
      if (name[0] === "#") {
        const code =
          name[1] === "x" || name[1] === "X"
            ? parseInt(name.slice(2), 16)
            : parseInt(name.slice(1), 10);
        return Number.isFinite(code) && code > 0 && code <= 0x10ffff
          ? String.fromCodePoint(code)
          : whole;
      }
      const found = NAMED_ENTITIES[name.toLowerCase()];
      return found === undefined ? whole : found;
    });
  }

  const TAGS = {
    b: "strong",
    strong: "strong",
    i: "em",
    em: "em",
    u: "u",
    ins: "u",
    s: "s",
    strike: "s",
    del: "s",
    code: "code",
    pre: "pre",
    a: "a",
    blockquote: "blockquote",
    "tg-spoiler": "span",
    span: "span",
    "tg-emoji": "span",
  };

  function safeHref(raw) {
    const href = decodeEntities(raw.trim());
    return /^(https?:|tg:|mailto:)/i.test(href) ? href : null;
  }

  function attribute(attrs, name) {
    const match = new RegExp(`${name}\\s*=\\s*("([^"]*)"|'([^']*)'|([^\\s>]+))`, "i").exec(attrs);
    if (!match) return null;
    return match[2] ?? match[3] ?? match[4] ?? "";
  }

  /** Telegram's HTML subset as DOM nodes; every piece of text is a text node. */
  function renderTelegramHtml(text, into) {
    const stack = [{ tag: null, node: into }];
    const top = () => stack[stack.length - 1].node;
    const pattern = /<(\/?)([a-zA-Z][a-zA-Z0-9-]*)([^<>]*)>|[^<]+|</g;
    let match;
    while ((match = pattern.exec(text)) !== null) {
      const [whole, closing, rawName, attrs] = match;
      if (rawName === undefined) {
        top().append(document.createTextNode(decodeEntities(whole)));
        continue;
      }
      const name = rawName.toLowerCase();
      if (!(name in TAGS)) {
        top().append(document.createTextNode(whole));
        continue;
      }
      if (closing) {
        const at = stack.map((s) => s.tag).lastIndexOf(name);
        if (at > 0) stack.length = at;
        else top().append(document.createTextNode(whole));
        continue;
      }
      const node = document.createElement(TAGS[name]);
      if (name === "a") {
        const href = safeHref(attribute(attrs, "href") || "");
        if (href) {
          node.href = href;
          node.target = "_blank";
          node.rel = "noopener noreferrer";
          node.title = href;
        }
      } else if (name === "tg-spoiler" || (name === "span" && /tg-spoiler/.test(attrs))) {
        node.className = "spoiler";
        node.title = "点击显示";
        node.addEventListener("click", () => node.classList.toggle("shown"));
      }
      top().append(node);
      if (!/\/\s*$/.test(attrs)) stack.push({ tag: name, node });
    }
  }

  function richText(text, parseMode) {
    const node = el("div", "text");
    if (String(parseMode || "").toUpperCase() === "HTML") renderTelegramHtml(text, node);
    else node.textContent = text;
    return node;
  }

  function plainText(text, parseMode) {
    return richText(text, parseMode).textContent;
  }

  // --- messages -------------------------------------------------------------------------

  function senderName(message) {
    const from = message.from || {};
    if (message.from_bot || from.is_bot) return from.first_name || BOT_NAME;
    return [from.first_name, from.last_name].filter(Boolean).join(" ") || "某人";
  }

  function mediaSummary(message) {
    if (message.photo) return "[图片]";
    if (message.sticker) return `[贴纸${message.sticker.emoji ? ` ${message.sticker.emoji}` : ""}]`;
    if (message.voice) return `[语音 ${message.voice.duration || 0}秒]`;
    if (message.document) return `[文件] ${message.document.file_name || ""}`.trim();
    if (message.video) return "[视频]";
    return "";
  }

  function summary(message) {
    if (!message) return "";
    if (message.deleted) return "此消息已删除";
    const body = message.text ?? message.caption;
    const text = body ? plainText(body, message.parse_mode) : "";
    return [mediaSummary(message), text].filter(Boolean).join(" ") || "（空消息）";
  }

  function forwardLabel(origin) {
    switch (origin.type) {
      case "user":
        return (origin.sender_user && origin.sender_user.first_name) || "某人";
      case "hidden_user":
        return origin.sender_user_name || "隐藏用户";
      case "chat":
        return (origin.sender_chat && origin.sender_chat.title) || "群聊";
      case "channel":
        return (origin.chat && origin.chat.title) || "频道";
      default:
        return "未知来源";
    }
  }

  function clock(unix) {
    if (!unix) return "";
    const date = new Date(unix * 1000);
    return `${String(date.getHours()).padStart(2, "0")}:${String(date.getMinutes()).padStart(2, "0")}`;
  }

  function sameOrigin(url) {
    return typeof url === "string" && url.startsWith("/") && !url.startsWith("//");
  }

  function keyboard(message) {
    const markup = message.reply_markup;
    if (!markup || !Array.isArray(markup.inline_keyboard)) return null;
    const box = el("div", "keyboard");
    for (const row of markup.inline_keyboard) {
      if (!Array.isArray(row)) continue;
      const line = el("div", "kb-row");
      for (const button of row) {
        line.append(inlineButton(message, button || {}));
      }
      box.append(line);
    }
    return box;
  }

  function inlineButton(message, button) {
    if (button.url) {
      const href = safeHref(String(button.url));
      const link = el(href ? "a" : "button", "kb-button", `${button.text || ""} ↗`);
      if (href) {
        link.href = href;
        link.target = "_blank";
        link.rel = "noopener noreferrer";
        link.title = href;
      } else link.disabled = true;
      return link;
    }
    const node = el("button", "kb-button", button.text || "");
    node.type = "button";
    if (button.callback_data === undefined) {
      node.disabled = true;
      node.title = "沙盒里不能用这种按钮";
      return node;
    }
    node.addEventListener("click", () => pressButton(message, button, node));
    return node;
  }

  async function pressButton(message, button, node) {
    const me = currentUser();
    node.disabled = true;
    node.classList.add("pressed");
    let query = null;
    try {
      const result = await api("/sandbox/send", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          callback: {
            chat_id: message.chat.id,
            message_id: message.message_id,
            data: button.callback_data,
            from: { id: me.id, first_name: me.first_name },
          },
        }),
      });
      query = result && result.callback_query;
      toast(`${me.first_name} 按了“${button.text || ""}”`);
      pollSoon();
    } catch (err) {
      toast(`按钮没有送达：${err.message}`);
    } finally {
      setTimeout(() => {
        node.disabled = false;
        node.classList.remove("pressed");
      }, 600);
    }
    if (query && query.id) showCallbackAnswer(query.id);
  }

  /** The bot's answerCallbackQuery text (a notice or an alert in Telegram), as a toast. */
  async function showCallbackAnswer(queryId) {
    try {
      const path = `/sandbox/callbacks/${encodeURIComponent(queryId)}?wait=10`;
      const query = await api(path, {}, 15000);
      const answer = query && query.answer;
      if (answer && answer.text) toast(answer.show_alert ? `⚠️ ${answer.text}` : answer.text);
    } catch (_err) {
      /* no answer to show */
    }
  }

  function renderMessage(message) {
    const me = currentUser();
    const fromBot = Boolean(message.from_bot || (message.from && message.from.is_bot));
    const fromId = message.from ? message.from.id : 0;
    const who = fromBot ? "bot" : fromId === me.id ? "mine" : "resident";
    const row = el("div", `msg ${who}`);
    row.id = `m-${message.message_id}`;
    row.dataset.messageId = String(message.message_id);
    row.dataset.from = fromBot ? "bot" : String(fromId);
    if (message.deleted) row.classList.add("deleted");

    row.append(avatar(senderName(message), fromId, fromBot));
    const body = el("div", "msg-body");
    const inGroup = message.chat && message.chat.type !== "private";
    if (inGroup || who !== "mine") body.append(el("div", "sender", senderName(message)));

    const bubble = el("div", "bubble");
    if (message.deleted) {
      bubble.append(el("div", "text", "此消息已删除"));
    } else {
      if (message.forward_origin) {
        bubble.append(el("div", "forwarded", `↪ 转发自 ${forwardLabel(message.forward_origin)}`));
      }
      const replied = message.reply_to_message || null;
      const repliedId = message.reply_to_message_id || (replied && replied.message_id);
      if (repliedId) {
        const target = replied || state.messagesById.get(repliedId) || null;
        const quote = el("button", "quote");
        quote.type = "button";
        quote.dataset.replyTo = String(repliedId);
        quote.title = "跳到原消息";
        quote.append(
          el("div", "quote-name", target ? senderName(target) : "原消息"),
          el("div", "quote-text", target ? summary(target) : "（已删除或不可见）"),
        );
        quote.addEventListener("click", () => jumpTo(repliedId));
        bubble.append(quote);
      }
      if (message.photo) {
        if (sameOrigin(message.file_url)) {
          const img = el("img", "photo");
          img.alt = "图片";
          img.loading = "lazy";
          img.src = message.file_url;
          img.addEventListener("load", () => keepAtBottom());
          bubble.append(img);
        } else bubble.append(el("div", "media-note", "[图片]"));
      } else if (mediaSummary(message)) {
        const note = el("div", "media-note", mediaSummary(message));
        bubble.append(note);
      }
      const textValue = message.text ?? message.caption;
      if (textValue) bubble.append(richText(textValue, message.parse_mode));
    }
    const meta = el("div", "meta");
    if (message.edit_date) meta.append(el("span", "", "已编辑"));
    meta.append(el("time", "", clock(message.date)));
    if (!message.deleted) {
      const reply = el("button", "reply-button", "回复");
      reply.type = "button";
      reply.addEventListener("click", () => startReply(message));
      meta.append(reply);
    }
    bubble.append(meta);
    body.append(bubble);
    const buttons = message.deleted ? null : keyboard(message);
    if (buttons) body.append(buttons);
    row.append(body);
    return row;
  }

  function atBottom() {
    const box = ui.messages;
    return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  }

  let stickToBottom = true;
  function keepAtBottom() {
    if (stickToBottom) ui.messages.scrollTop = ui.messages.scrollHeight;
  }

  function jumpTo(messageId) {
    const target = $(`m-${messageId}`);
    if (!target) return;
    target.scrollIntoView({ behavior: "smooth", block: "center" });
    target.classList.add("flash");
    setTimeout(() => target.classList.remove("flash"), 1200);
  }

  /** Show `messages` (the whole chat, in order), touching only what changed. */
  function renderMessages(messages, chatKey) {
    if (state.renderedChat !== chatKey) {
      for (const { el: node } of state.rendered.values()) node.remove();
      state.rendered.clear();
      state.renderedChat = chatKey;
      stickToBottom = true;
    } else {
      stickToBottom = stickToBottom || atBottom();
    }
    state.messagesById = new Map(messages.map((m) => [m.message_id, m]));
    const keep = new Set();
    let previous = ui.empty;
    let added = false;
    for (const message of messages) {
      const id = message.message_id;
      keep.add(id);
      const sig = JSON.stringify(message) + (message.from && message.from.id === state.userId);
      const known = state.rendered.get(id);
      let node;
      if (known && known.sig === sig) {
        node = known.el;
      } else {
        node = renderMessage(message);
        if (known) known.el.replaceWith(node);
        else added = true;
        state.rendered.set(id, { sig, el: node });
      }
      if (previous.nextSibling !== node) previous.after(node);
      previous = node;
    }
    for (const [id, known] of state.rendered) {
      if (!keep.has(id)) {
        known.el.remove();
        state.rendered.delete(id);
      }
    }
    ui.empty.hidden = messages.length > 0;
    state.seen.set(chatKey, messages.filter((m) => !m.deleted).length);
    renderReplyKeyboard(messages);
    if (added) keepAtBottom();
  }

  /** A reply keyboard (ReplyKeyboardMarkup) from the bot's latest message that set one. */
  function renderReplyKeyboard(messages) {
    let markup = null;
    for (let i = messages.length - 1; i >= 0; i -= 1) {
      const m = messages[i];
      if (!m.from_bot || !m.reply_markup || m.deleted) continue;
      if (Array.isArray(m.reply_markup.keyboard) || m.reply_markup.remove_keyboard) {
        markup = m.reply_markup;
        break;
      }
    }
    const sig = JSON.stringify(markup);
    if (ui.replyKeyboard.dataset.sig === sig) return;
    ui.replyKeyboard.dataset.sig = sig;
    ui.replyKeyboard.replaceChildren();
    if (!markup || !Array.isArray(markup.keyboard)) {
      ui.replyKeyboard.hidden = true;
      return;
    }
    for (const row of markup.keyboard) {
      const line = el("div", "kb-row");
      for (const button of row || []) {
        const text = typeof button === "string" ? button : (button && button.text) || "";
        const node = el("button", "kb-button", text);
        node.type = "button";
        node.addEventListener("click", () => sendMessage({ text }));
        line.append(node);
      }
      ui.replyKeyboard.append(line);
    }
    ui.replyKeyboard.hidden = false;
  }

  function showChat() {
    state.replyTo = null;
    renderReplyBar();
    state.chatListSig = "";
    renderChatList();
    renderHeader();
    renderMessages([], state.chatKey);
    ui.sendError.hidden = true;
    restartWaker();
    pollSoon();
  }

  // --- polling --------------------------------------------------------------------------
  //
  // Two loops. The refresher fetches the whole chat about every 700 ms: it is what the page
  // shows, so edits, deletions and "typing" appear too. The waker long-polls for messages after
  // the last one shown (``?since=N&wait=25``: the sandbox answers as soon as one arrives) and
  // only wakes the refresher, so a reply shows at once and every render comes from one full,
  // consistent list. A sandbox without long polling answers at once; the waker then just
  // sleeps between requests.

  let pollTimer = 0;
  let lastChatsAt = 0;
  let polling = false;
  let pollAgain = false;
  let epoch = 0; // bumped when the chat is known to have changed: older answers are stale

  function pollSoon(delay = 0) {
    epoch += 1;
    if (polling) {
      pollAgain = true;
      return;
    }
    clearTimeout(pollTimer);
    pollTimer = setTimeout(poll, delay);
  }

  function messagesPath(chatKey) {
    return `/sandbox/chats/${encodeURIComponent(chatKey)}/messages`;
  }

  /** The whole chat, or null when the sandbox does not know it (nobody wrote in it yet). */
  async function fetchChat(chatKey) {
    try {
      return await api(messagesPath(chatKey));
    } catch (err) {
      if (err.status === 404) return null;
      throw err;
    }
  }

  async function poll() {
    polling = true;
    pollAgain = false;
    const started = epoch;
    const chatKey = state.chatKey;
    let delay = POLL_MS;
    try {
      if (Date.now() - lastChatsAt > CHATS_EVERY_MS) {
        lastChatsAt = Date.now();
        await refreshChats();
      }
      // A chat nobody wrote in yet is not asked for: the sandbox would answer 404 every poll.
      const known = !state.chatsLoaded || state.serverChats.has(chatKey);
      const data = known ? await fetchChat(chatKey) : null;
      if (started === epoch && chatKey === state.chatKey) {
        if (data && data.chat) state.serverChats.set(chatKey, data.chat);
        renderMessages(data ? unwrap(data, "messages") : [], chatKey);
        renderHeader();
      } else {
        delay = 0; // something changed meanwhile: look again at once
      }
    } catch (_err) {
      delay = 1500; // offline: the notice is up; retry a little slower
    } finally {
      polling = false;
    }
    if (pollAgain) delay = 0;
    clearTimeout(pollTimer);
    pollTimer = setTimeout(poll, delay);
  }

  // The newest message the waker has already announced (per chat): it waits for messages after
  // that one, so it never spins on a message the refresher has not rendered yet.
  const waker = { controller: null, chatKey: null, since: 0 };

  function lastShownId() {
    let last = 0;
    for (const id of state.rendered.keys()) last = Math.max(last, id);
    return last;
  }

  function restartWaker() {
    if (waker.controller) waker.controller.abort();
    waker.controller = null;
    waker.chatKey = null;
    waker.since = 0;
  }

  /** Run the refresher now, or right after the poll in flight; unlike pollSoon(), the answer
   *  that poll is waiting for still counts, so repeated wake-ups cannot starve it. */
  function wake() {
    if (polling) {
      pollAgain = true;
      return;
    }
    clearTimeout(pollTimer);
    pollTimer = setTimeout(poll, 0);
  }

  async function wakerLoop() {
    for (;;) {
      const chatKey = state.chatKey;
      const controller = new AbortController();
      waker.controller = controller;
      const began = Date.now();
      let wait = POLL_MS;
      try {
        if (state.serverChats.has(chatKey) && state.renderedChat === chatKey) {
          const announced = waker.chatKey === chatKey ? waker.since : 0;
          const since = Math.max(lastShownId(), announced);
          const path = `${messagesPath(chatKey)}?since=${since}&wait=${LONG_POLL_SECONDS}`;
          const data = await api(path, { signal: controller.signal }, LONG_POLL_MS);
          const fresh = unwrap(data, "messages").filter((m) => m.message_id > since);
          if (fresh.length > 0 && chatKey === state.chatKey && !controller.signal.aborted) {
            waker.chatKey = chatKey;
            waker.since = Math.max(since, ...fresh.map((m) => m.message_id));
            wake();
          }
          if (fresh.length > 0 || Date.now() - began > 1000) wait = 0;
        }
      } catch (_err) {
        wait = controller.signal.aborted ? 0 : 1500;
      }
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  // --- composing and sending ------------------------------------------------------------

  function startReply(message) {
    state.replyTo = message;
    renderReplyBar();
    ui.input.focus();
  }

  function renderReplyBar() {
    const message = state.replyTo;
    ui.replyBar.hidden = !message;
    ui.replyBarText.textContent = message ? `${senderName(message)}：${summary(message)}` : "";
  }

  function setForward(on) {
    state.forward = on;
    ui.forward.setAttribute("aria-pressed", on ? "true" : "false");
    ui.forwardBar.hidden = !on;
  }

  function clearPhoto() {
    if (state.photo && state.photo.url) URL.revokeObjectURL(state.photo.url);
    state.photo = null;
    ui.photoBar.hidden = true;
    ui.photoPreview.removeAttribute("src");
    ui.photoInput.value = "";
  }

  function readAsBase64(blob) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(blob);
    });
  }

  /** PNG and JPEG go as they are; other images (WebP, GIF, ...) are converted to JPEG. */
  async function asPngOrJpeg(file) {
    if (file.type === "image/png" || file.type === "image/jpeg") return file;
    const url = URL.createObjectURL(file);
    try {
      const img = new Image();
      await new Promise((resolve, reject) => {
        img.onload = resolve;
        img.onerror = () => reject(new Error("无法读取这张图片"));
        img.src = url;
      });
      const canvas = document.createElement("canvas");
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const ctx = canvas.getContext("2d");
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.drawImage(img, 0, 0);
      return await new Promise((resolve, reject) =>
        canvas.toBlob(
          (blob) => (blob ? resolve(blob) : reject(new Error("无法转换这张图片"))),
          "image/jpeg",
          0.92,
        ),
      );
    } finally {
      URL.revokeObjectURL(url);
    }
  }

  async function onPhotoPicked() {
    const file = ui.photoInput.files && ui.photoInput.files[0];
    if (!file) return;
    try {
      if (!file.type.startsWith("image/")) throw new Error("请选择图片文件");
      const blob = await asPngOrJpeg(file);
      if (blob.size > MAX_PHOTO_BYTES) throw new Error("图片太大（最多 10 MB）");
      const base64 = await readAsBase64(blob);
      clearPhoto();
      state.photo = { base64, name: file.name, url: URL.createObjectURL(blob) };
      ui.photoPreview.src = state.photo.url;
      ui.photoName.textContent = file.name;
      ui.photoBar.hidden = false;
      ui.input.focus();
    } catch (err) {
      clearPhoto();
      toast(err.message || "无法读取这张图片");
    }
  }

  function insertAtCursor(text) {
    const box = ui.input;
    const start = box.selectionStart ?? box.value.length;
    const end = box.selectionEnd ?? box.value.length;
    const before = box.value.slice(0, start);
    const pad = before && !/\s$/.test(before) ? " " : "";
    box.setRangeText(pad + text, start, end, "end");
    box.focus();
    autosize();
  }

  function autosize() {
    ui.input.style.height = "auto";
    ui.input.style.height = `${Math.min(ui.input.scrollHeight + 2, 160)}px`;
  }

  /** POST /sandbox/send as the current user in the current chat. */
  async function sendMessage(extra) {
    const entry = currentEntry();
    const me = currentUser();
    const chat =
      entry.chat.type === "private"
        ? { id: me.id, type: "private" }
        : { id: entry.chat.id, type: entry.chat.type, title: entry.chat.title };
    const body = { chat, from: { id: me.id, first_name: me.first_name }, ...extra };
    const result = await api("/sandbox/send", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    stickToBottom = true;
    lastChatsAt = 0; // the chat may be new: list the chats again before fetching it
    pollSoon();
    return result;
  }

  async function onSubmit(event) {
    event.preventDefault();
    if (state.sending) return;
    const text = ui.input.value;
    const hasText = text.trim().length > 0;
    if (!hasText && !state.photo) {
      ui.input.focus();
      return;
    }
    const extra = {};
    if (state.photo) {
      extra.photo = state.photo.base64;
      if (hasText) extra.caption = text;
    } else extra.text = text;
    if (state.replyTo) extra.reply_to_message_id = state.replyTo.message_id;
    if (state.forward) extra.forward_sender_name = ui.forwardName.value.trim() || "未知用户";

    state.sending = true;
    ui.send.disabled = true;
    ui.sendError.hidden = true;
    try {
      await sendMessage(extra);
      ui.input.value = "";
      autosize();
      clearPhoto();
      state.replyTo = null;
      renderReplyBar();
      setForward(false);
    } catch (err) {
      ui.sendError.textContent = `发送失败：${err.message}`;
      ui.sendError.hidden = false;
    } finally {
      state.sending = false;
      ui.send.disabled = false;
      ui.input.focus();
    }
  }

  function onKeyDown(event) {
    // Enter sends; Shift+Enter is a new line; Enter that confirms an IME candidate does neither.
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) {
      return;
    }
    event.preventDefault();
    ui.composer.requestSubmit();
  }

  async function onReset() {
    if (!window.confirm("清空沙盒里的所有聊天记录？机器人那边也会忘掉它们。")) return;
    try {
      await api("/sandbox/reset", { method: "POST" });
      state.seen.clear();
      state.serverChats.clear();
      state.renderedChat = null;
      lastChatsAt = 0;
      showChat();
      toast("沙盒已清空");
    } catch (err) {
      toast(`清空失败：${err.message}`);
    }
  }

  function openDrawer() {
    ui.app.classList.add("drawer-open");
  }

  function closeDrawer() {
    ui.app.classList.remove("drawer-open");
  }

  // --- start ----------------------------------------------------------------------------

  restore();
  renderUserPicker();
  ui.userPicker.addEventListener("change", onUserChange);
  ui.composer.addEventListener("submit", onSubmit);
  ui.input.addEventListener("keydown", onKeyDown);
  ui.input.addEventListener("input", autosize);
  ui.mention.addEventListener("click", () => insertAtCursor(`@${BOT_USERNAME} `));
  ui.forward.addEventListener("click", () => setForward(!state.forward));
  ui.photoInput.addEventListener("change", onPhotoPicked);
  ui.photoCancel.addEventListener("click", clearPhoto);
  ui.replyCancel.addEventListener("click", () => {
    state.replyTo = null;
    renderReplyBar();
  });
  ui.reset.addEventListener("click", onReset);
  ui.openSidebar.addEventListener("click", openDrawer);
  ui.scrim.addEventListener("click", closeDrawer);
  ui.messages.addEventListener("scroll", () => {
    stickToBottom = atBottom();
  });
  ui.offline.hidden = true;
  showChat();
  wakerLoop();
  api("/sandbox/bot")
    .then((info) => {
      const bot = info && info.bot;
      if (!bot) return;
      BOT_USERNAME = bot.username || BOT_USERNAME;
      BOT_NAME = bot.first_name || BOT_NAME;
      ui.mention.textContent = `@${BOT_NAME}`;
      renderHeader();
    })
    .catch(() => {
      /* the names in the page stand */
    });
  ui.input.focus();
})();

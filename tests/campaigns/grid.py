"""A small grid for the campaign tests: a community, two grids, a building, leaders and groups."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.store import Store
from bot.store.campaigns import SHANGHAI, NewCampaign

# Far enough ahead that the campaigns' real creation time is always before the test clock.
MONDAY = datetime(2031, 3, 3, tzinfo=SHANGHAI)  # a Monday, midnight in Asia/Shanghai


@dataclass
class Grid:
    community: int
    grid1: int
    grid2: int
    building: int
    leader1: int  # leads grid 1
    leader2: int  # leads grid 2
    chats: dict[str, int]  # name -> chat id in the store
    external: dict[str, str]  # name -> Telegram chat id


GROUPS = {
    # name: (area, tags)
    "elderly1": ("grid1", ["elderly"]),
    "students1": ("grid1", ["students"]),
    "building1": ("building", ["elderly", "new_residents"]),
    "elderly2": ("grid2", ["elderly"]),
}


def make_grid(store: Store, first_chat: int = -1003000) -> Grid:
    community = store.add_area("community", "东湖社区").id
    grid1 = store.add_area("grid", "1网格", community).id
    grid2 = store.add_area("grid", "2网格", community).id
    building = store.add_area("building", "5幢", grid1).id
    leader1 = store.add_user("lead1", "grid_leader", "王网格长", telegram_user_id=7001).id
    leader2 = store.add_user("lead2", "grid_leader", "李网格长", telegram_user_id=7002).id
    store.add_leader(grid1, leader1)
    store.add_leader(grid2, leader2)
    areas = {"grid1": grid1, "grid2": grid2, "building": building}
    chats, external = {}, {}
    for i, (name, (area, tags)) in enumerate(GROUPS.items()):
        chat_external = str(first_chat - i)
        by = leader2 if area == "grid2" else leader1
        view = store.register_group("telegram", chat_external, areas[area], tags, by, name)
        chats[name], external[name] = view.id, chat_external
    return Grid(community, grid1, grid2, building, leader1, leader2, chats, external)


def campaign(**fields: object) -> NewCampaign:
    values: dict[str, object] = {
        "name": "防骗提醒",
        "area_id": 0,
        "schedule_kind": "once",
        "schedule": {"at": (MONDAY + timedelta(hours=10)).isoformat()},
        "starts_at": MONDAY,
        "ends_at": MONDAY + timedelta(days=30),
        "text": "最近有人冒充客服让大家退款，千万不要点陌生链接。",
        "quiet_start": "22:00",
        "quiet_end": "07:00",
    }
    values.update(fields)
    return NewCampaign(**values)  # type: ignore[arg-type]

"""Subscribing to warnings, and the resident's optional profile (age group, with consent).

"订阅" subscribes and then asks, with buttons, for an age group, saying what it is used for; a
pressed button comes back as ``/subscribe{"age_group": "..."}``. Only an explicit choice is
stored, with the time of consent; "不提供" or unsubscribing deletes it.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import call_store
from actions.deps import deps
from bot.store.repo import StoreUnavailable

AGE_GROUPS = {
    "under_18": "18岁以下",
    "18_35": "18到35岁",
    "36_59": "36到59岁",
    "60_plus": "60岁以上",
}
NO_PROFILE = "none"


class ActionSubscribe(Action):
    def name(self) -> str:
        return "action_subscribe"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        store = deps().store
        age_group = next(tracker.get_latest_entity_values("age_group"), None)
        try:
            if age_group == NO_PROFILE:
                await call_store(store.set_profile, tracker.sender_id, None)
                dispatcher.utter_message(response="utter_profile_cleared")
            elif age_group in AGE_GROUPS:
                await call_store(store.set_subscribed, tracker.sender_id, True)
                await call_store(store.set_profile, tracker.sender_id, age_group)
                dispatcher.utter_message(
                    response="utter_profile_saved", age_group_name=AGE_GROUPS[age_group]
                )
            else:
                resident = await call_store(store.resident, tracker.sender_id)
                if resident.subscribed:
                    dispatcher.utter_message(response="utter_already_subscribed")
                else:
                    await call_store(store.set_subscribed, tracker.sender_id, True)
                    dispatcher.utter_message(response="utter_subscribed")
        except StoreUnavailable:
            dispatcher.utter_message(response="utter_store_busy")
        return [SlotSet("age_group", None)]


class ActionUnsubscribe(Action):
    def name(self) -> str:
        return "action_unsubscribe"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        store = deps().store
        try:
            resident = await call_store(store.resident, tracker.sender_id)
            was_subscribed = resident.subscribed
            await call_store(store.set_subscribed, tracker.sender_id, False)
            await call_store(store.set_profile, tracker.sender_id, None)
        except StoreUnavailable:
            dispatcher.utter_message(response="utter_store_busy")
            return []
        dispatcher.utter_message(
            response="utter_unsubscribed" if was_subscribed else "utter_not_subscribed"
        )
        return []

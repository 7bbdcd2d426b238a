"""The Telegram front end (python-telegram-bot 22): groups, private chats, screenshots."""

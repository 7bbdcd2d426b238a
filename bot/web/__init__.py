"""The product's web pages (today: the sandbox page for chatting with the bot in a browser)."""

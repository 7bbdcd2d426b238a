"""The staff dashboard (``bot.dashboard.web``), served by the application on ``WEB_PORT``."""

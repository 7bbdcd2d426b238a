"""``python -m bot.sandbox --port 8081 --token TOKEN``: the sandbox alone, for debugging.

The product mounts the same app into its own server; running it alone lets a developer poke
it with curl or point a bot at it by hand.
"""

from __future__ import annotations

import argparse
import logging

import uvicorn

from bot.sandbox.models import RateLimits
from bot.sandbox.server import create_app
from bot.sandbox.state import SandboxState

DEFAULT_TOKEN = "123456:sandbox-token"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bot.sandbox", description="Run the sandbox Telegram Bot API server."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the one bot token accepted")
    parser.add_argument(
        "--rate-limits", action="store_true", help="enforce Telegram's flood limits (429)"
    )
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    state = SandboxState(args.token, rate_limits=RateLimits(enabled=args.rate_limits))
    base = f"http://{args.host}:{args.port}/sandbox"
    print(f"Bot API:  base_url={base}/bot  base_file_url={base}/file/bot  token={args.token}")
    print(f"Control:  {base}/send  {base}/chats  {base}/health")
    # ws="none": the sandbox has no websocket routes, and rasa-sdk pins an old websockets
    # that uvicorn's auto-detection cannot import.
    uvicorn.run(
        create_app(state), host=args.host, port=args.port, log_level=args.log_level, ws="none"
    )


if __name__ == "__main__":
    main()

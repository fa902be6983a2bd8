"""Command line: ``python -m furiosa_integrations chat "QUESTION"`` streams an answer."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from .composition import get_engine
from .core import SamplingParams


def _chat(args: argparse.Namespace) -> int:
    engine = get_engine(
        args.model,
        backend=args.backend,
        device=args.device,
        base_url=args.base_url,
        api_key=os.environ.get("FURIOSA_API_KEY") or None,
    )
    messages = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    messages.append({"role": "user", "content": args.question})
    params = SamplingParams(
        max_tokens=args.max_tokens, temperature=args.temperature, seed=args.seed
    )

    async def run() -> None:
        async for chunk in engine.stream(messages=messages, params=params):
            sys.stdout.write(chunk.text)
            sys.stdout.flush()
        sys.stdout.write("\n")

    asyncio.run(run())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="furiosa-integrations")
    commands = parser.add_subparsers(dest="command", required=True)
    chat = commands.add_parser("chat", help="stream an answer to one question")
    chat.add_argument("question")
    chat.add_argument("--model", default=None, help="local model dir or .gguf (default: bundled)")
    chat.add_argument("--backend", default="auto", choices=["auto", "torch", "furiosa", "remote"])
    chat.add_argument(
        "--base-url",
        default=os.environ.get("FURIOSA_BASE_URL") or None,
        help="a server to use (furiosa-llm serve, vLLM); default $FURIOSA_BASE_URL, key from "
        "$FURIOSA_API_KEY",
    )
    chat.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda")
    chat.add_argument("--system", default=None, help="a system prompt")
    chat.add_argument("--max-tokens", type=int, default=256)
    chat.add_argument("--temperature", type=float, default=0.0)
    chat.add_argument("--seed", type=int, default=None)
    chat.set_defaults(func=_chat)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())

"""The platform-neutral command layer: `/claim` and `/brief` text -> request -> message.

Adapters call ``CommandHandler.handle_text(caller, "/brief", text)`` (or ``parse_command``
then ``CommandHandler.handle``) and render the message they get back.
"""

from bot.commands.handlers import ClaimSearch, CommandHandler, claim_answer
from bot.commands.parse import format_days, next_run, parse_command, parse_days
from bot.commands.requests import Caller, ParseProblem, Request

__all__ = [
    "Caller",
    "ClaimSearch",
    "CommandHandler",
    "ParseProblem",
    "Request",
    "claim_answer",
    "format_days",
    "next_run",
    "parse_command",
    "parse_days",
]

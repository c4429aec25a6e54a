"""What the core needs from a chat platform to deliver a message, and how sends fail.

An adapter implements ``Sender``; the outbox deliverer calls it. Destinations are opaque
strings the adapter understands (a channel id, or a user id for direct messages).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from bot.messages import Message


@dataclass(frozen=True)
class Destination:
    platform: str
    workspace: str
    ref: str
    direct: bool = False  # a DM to the user named by ref


@dataclass(frozen=True)
class Sent:
    """The platform accepted the message; ``message_id`` is its id there."""

    message_id: str


class TransientSendError(Exception):
    """Try again later: rate limited, 5xx, network trouble."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class PermanentSendError(Exception):
    """Never retry: channel gone, bot removed, DMs closed, message refused."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Sender(Protocol):
    platform: str

    async def send(self, dest: Destination, message: Message, idempotency_key: str) -> Sent:
        """Post ``message``; raise TransientSendError or PermanentSendError on failure.

        Adapters should attach ``idempotency_key`` to the platform message where the
        platform allows (Slack message metadata, Discord nonce) so ``find_sent`` works.
        """
        ...

    async def find_sent(self, dest: Destination, idempotency_key: str) -> str | None:
        """After a crash mid-send: the id of a message already posted under this key."""
        ...


SendState = Literal["pending", "sending", "sent", "failed"]

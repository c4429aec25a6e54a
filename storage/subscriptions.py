"""Subscription repository: a user's alerts on a theme or a phrase.

Subscriptions are personal: every read and delete here is scoped to one user
(platform, workspace, user_ref), so no caller can see or remove another user's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Select, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import Subscription

DEFAULT_CAP = 25


class SubscriptionExists(ValueError):
    def __init__(self, existing: Subscription) -> None:
        super().__init__(f"already subscribed (#{existing.id})")
        self.existing = existing


class SubscriptionCapReached(ValueError):
    pass


@dataclass(frozen=True)
class Owner:
    platform: str
    workspace: str
    user_ref: str

    def mine(self) -> Select[Subscription]:
        return select(Subscription).where(
            Subscription.platform == self.platform,
            Subscription.workspace == self.workspace,
            Subscription.user_ref == self.user_ref,
        )


def add_subscription(
    session: Session,
    owner: Owner,
    *,
    kind: str,
    value: str,
    delivery: str,
    dest_ref: str,
    cap: int = DEFAULT_CAP,
) -> Subscription:
    """Add one; phrases compare case-insensitively. Raises SubscriptionExists or
    SubscriptionCapReached."""
    same = owner.mine().where(
        Subscription.kind == kind,
        func.lower(Subscription.value) == value.lower(),
        Subscription.dest_ref == dest_ref,
    )
    existing = session.scalars(same).first()
    if existing is not None:
        raise SubscriptionExists(existing)
    if count_subscriptions(session, owner) >= cap:
        raise SubscriptionCapReached(f"at most {cap} subscriptions per person")
    sub = Subscription(
        platform=owner.platform,
        workspace=owner.workspace,
        user_ref=owner.user_ref,
        kind=kind,
        value=value,
        delivery=delivery,
        dest_ref=dest_ref,
    )
    try:
        with session.begin_nested():
            session.add(sub)
    except IntegrityError:
        # The same subscription was added concurrently (a double-click, two replicas).
        raced = session.scalars(same).first()
        if raced is None:
            raise
        raise SubscriptionExists(raced) from None
    return sub


def count_subscriptions(session: Session, owner: Owner) -> int:
    query = select(func.count()).select_from(owner.mine().subquery())
    return int(session.scalar(query) or 0)


def list_subscriptions(session: Session, owner: Owner) -> Sequence[Subscription]:
    return session.scalars(owner.mine().order_by(Subscription.id)).all()


def remove_subscription_by_id(session: Session, owner: Owner, sub_id: int) -> int:
    """Delete the owner's subscription ``sub_id``; 0 when it is not theirs or not there."""
    ids = owner.mine().where(Subscription.id == sub_id).with_only_columns(Subscription.id)
    return _delete_ids(session, list(session.scalars(ids)))


def remove_subscriptions(
    session: Session, owner: Owner, *, kind: str, value: str, delivery: str | None = None
) -> int:
    """Delete the owner's subscriptions to one theme or phrase; return how many."""
    query = owner.mine().where(
        Subscription.kind == kind, func.lower(Subscription.value) == value.lower()
    )
    if delivery is not None:
        query = query.where(Subscription.delivery == delivery)
    return _delete_ids(session, list(session.scalars(query.with_only_columns(Subscription.id))))


def all_subscriptions(session: Session) -> Sequence[Subscription]:
    """Every subscription, for the alert matcher."""
    return session.scalars(select(Subscription).order_by(Subscription.id)).all()


def _delete_ids(session: Session, ids: list[int]) -> int:
    if ids:
        session.execute(delete(Subscription).where(Subscription.id.in_(ids)))
    return len(ids)

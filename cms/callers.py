"""Who calls a service: the audit actor, their roles, and the account (for four-eyes checks)."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from core.actors import Actor
from core.roles import Role, roles_of


@dataclass(frozen=True, slots=True)
class Caller:
    actor: Actor
    roles: frozenset[Role]
    user_id: int | None = None
    system: bool = False

    @classmethod
    def for_user(cls, user: AbstractBaseUser | AnonymousUser) -> Caller:
        if not isinstance(user, AbstractBaseUser):
            raise TypeError("an anonymous user cannot call a registry service")
        return cls(actor=Actor.for_user(user), roles=roles_of(user), user_id=int(user.pk))

    @classmethod
    def for_system(cls, label: str) -> Caller:
        """A scheduled task or the personalization session: allowed the transitions marked
        ``system`` in the lifecycle table, and no approval (it has no person to be the second)."""
        return cls(actor=Actor.system(label), roles=frozenset(), user_id=None, system=True)

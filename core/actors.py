"""Who did something: a person, a station machine account, or the system itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from django.contrib.auth.models import AbstractBaseUser

from core.roles import Role, roles_of

ActorKind = Literal["user", "station", "system"]


@dataclass(frozen=True, slots=True)
class Actor:
    kind: ActorKind
    id: str
    label: str

    @classmethod
    def for_user(cls, user: AbstractBaseUser) -> Actor:
        kind: ActorKind = "station" if Role.STATION in roles_of(user) else "user"
        return cls(kind=kind, id=str(user.pk), label=user.get_username())

    @classmethod
    def system(cls, label: str) -> Actor:
        """A scheduled task or a management command run without a named operator."""
        return cls(kind="system", id="", label=label)

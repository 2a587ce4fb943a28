"""The hierarchy configuration file read by ``pki_init`` (TOML)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pki.choices import CaKind
from pki.domain.builders import PolicySpec


class HierarchyConfigError(ValueError):
    """The configuration file is unreadable or inconsistent; the message says where."""


@dataclass(frozen=True)
class AuthorityConfig:
    short_name: str
    common_name: str
    kind: str
    key_size: int
    parent: str | None = None
    profiles: tuple[str, ...] = ()
    policies: dict[str, tuple[PolicySpec, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class HierarchyConfig:
    organisation: str
    organisation_units: tuple[str, ...]
    test: bool
    allow_small_ca_keys: bool
    responder_key_size: int
    ocsp_validity_hours: int
    crl_next_update_hours: int
    delta_crl_next_update_hours: int
    authorities: tuple[AuthorityConfig, ...]


def _policies(raw: dict[str, Any]) -> dict[str, tuple[PolicySpec, ...]]:
    return {
        profile: tuple(PolicySpec(str(p["oid"]), p.get("cps_uri")) for p in items)
        for profile, items in raw.items()
    }


def hierarchy_load(path: str | Path) -> HierarchyConfig:
    """Parse and check the file; :class:`HierarchyConfigError` names the problem."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise HierarchyConfigError(f"cannot read hierarchy file {path}: {exc}") from None
    try:
        authorities = tuple(
            AuthorityConfig(
                short_name=str(a["short_name"]),
                common_name=str(a["common_name"]),
                kind=str(a["kind"]),
                key_size=int(a["key_size"]),
                parent=a.get("parent"),
                profiles=tuple(a.get("profiles", ())),
                policies=_policies(a.get("policies", {})),
            )
            for a in data["authorities"]
        )
        config = HierarchyConfig(
            organisation=str(data["organisation"]),
            organisation_units=tuple(data.get("organisation_units", ())),
            test=bool(data.get("test", False)),
            allow_small_ca_keys=bool(data.get("allow_small_ca_keys", False)),
            responder_key_size=int(data.get("ocsp", {}).get("responder_key_size", 2048)),
            ocsp_validity_hours=int(data.get("ocsp", {}).get("validity_hours", 24)),
            crl_next_update_hours=int(data.get("crl", {}).get("next_update_hours", 24)),
            delta_crl_next_update_hours=int(data.get("crl", {}).get("delta_next_update_hours", 4)),
            authorities=authorities,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise HierarchyConfigError(f"hierarchy file {path}: missing or bad field {exc}") from None
    seen: set[str] = set()
    for auth in config.authorities:
        if auth.kind not in CaKind.values:
            kinds = " or ".join(CaKind.values)
            raise HierarchyConfigError(f"{auth.short_name}: kind must be {kinds}")
        if (auth.kind == CaKind.ROOT) != (auth.parent is None):
            raise HierarchyConfigError(f"{auth.short_name}: a root has no parent, others need one")
        if auth.parent is not None and auth.parent not in seen:
            raise HierarchyConfigError(f"{auth.short_name}: parent {auth.parent} must come first")
        seen.add(auth.short_name)
    return config

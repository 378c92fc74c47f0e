"""Who may sign in through an OIDC provider: allow-lists over the provider's claims.

Only `sub` is a stable identifier (OIDC Core §5.7); an email address counts only when the provider
says it has verified it (`email_verified`), otherwise anyone could claim a colleague's address at a
provider that does not check. Google's `hd` claim names the Workspace domain that manages the
account: unlike the `hd` request parameter, which the browser can strip, it is signed by Google.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mcp_auth_server.upstreams.base import AccessDenied


def verified_email(claims: Mapping[str, Any]) -> str | None:
    """The email address, lower-cased, if the provider verified it (some send "true" as a string)."""
    email = claims.get("email")
    if isinstance(email, str) and email and claims.get("email_verified") in (True, "true"):
        return email.lower()
    return None


def _lowered(values: Iterable[str]) -> frozenset[str]:
    return frozenset(value.lower() for value in values)


@dataclass(frozen=True)
class Admission:
    """AUTH_ALLOWED_USERS (subs or verified emails), AUTH_ALLOWED_DOMAINS (verified email domains),
    and for Google the hosted domains and a verified email required of everyone. Empty lists admit all."""

    allowed_subjects: frozenset[str] = frozenset()
    allowed_emails: frozenset[str] = frozenset()
    allowed_domains: frozenset[str] = frozenset()
    hosted_domains: frozenset[str] = frozenset()
    require_verified_email: bool = False

    @classmethod
    def of(
        cls,
        *,
        allowed_users: Iterable[str] = (),
        allowed_domains: Iterable[str] = (),
        hosted_domains: Iterable[str] = (),
        require_verified_email: bool = False,
    ) -> Admission:
        users = list(allowed_users)
        return cls(
            # Subjects are compared exactly (they are case-sensitive); emails case-insensitively.
            allowed_subjects=frozenset(user for user in users if "@" not in user),
            allowed_emails=_lowered(user for user in users if "@" in user),
            allowed_domains=_lowered(domain.lstrip("@") for domain in allowed_domains),
            hosted_domains=_lowered(hosted_domains),
            require_verified_email=require_verified_email,
        )

    def check(self, claims: Mapping[str, Any], provider: str) -> None:
        """Raise AccessDenied unless the claims pass every rule."""
        email = verified_email(claims)
        who = email or claims.get("email") or claims.get("sub")
        if self.require_verified_email and email is None:
            raise AccessDenied(f"{provider} has not verified the email address of {who}")
        if self.hosted_domains and str(claims.get("hd", "")).lower() not in self.hosted_domains:
            raise AccessDenied(f"{who} is not an account of this service's {provider} Workspace domains")
        if not (self.allowed_subjects or self.allowed_emails or self.allowed_domains):
            return
        if claims.get("sub") in self.allowed_subjects or email in self.allowed_emails:
            return
        if email is not None and email.rpartition("@")[2] in self.allowed_domains:
            return
        raise AccessDenied(f"{provider} user {who} is not on this service's allow-lists")

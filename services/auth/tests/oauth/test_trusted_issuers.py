"""Trusted issuer entries (oauth/trusted_issuers.py): which workload subjects a rule covers, and the
rules that keep an entry from trusting more than it says."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mcp_auth_server.oauth.trusted_issuers import TrustedIssuerConfig, check_transport

RESOURCE = "https://tools.example.com/mcp"


def workload(subjects: dict[str, Any], **fields: Any) -> TrustedIssuerConfig:
    return TrustedIssuerConfig.model_validate(
        {"issuer": "https://k8s.example.com", "kind": "workload", "subjects": subjects, **fields}
    )


def rule(identity: str | None = None) -> dict[str, Any]:
    return {"resource": RESOURCE, "scopes": ["mcp:tools"], "identity": identity}


@pytest.mark.parametrize(
    ("subject", "identity"),
    [
        ("system:serviceaccount:agents:summariser", "glob"),
        ("system:serviceaccount:agents:exact", "exact"),  # an exact pattern wins over a glob
        ("system:serviceaccount:agents:", "glob"),
        ("system:serviceaccount:agents-evil:bot", None),  # not a prefix match
        ("system:serviceaccount:agents:x:y", None),  # `*` never spans a `:`
        ("system:serviceaccount:other:bot", None),
        ("repo:acme/deploy:ref:refs/heads/main", "actions"),
        ("repo:acme/deploy:environment:prod:ref:refs/heads/main", None),
        ("repo:evil/deploy:ref:refs/heads/main", None),
    ],
)
def test_which_rule_covers_a_subject(subject: str, identity: str | None) -> None:
    config = workload(
        {
            "system:serviceaccount:agents:*": rule("glob"),
            "system:serviceaccount:agents:exact": rule("exact"),
            "repo:acme/*:ref:refs/heads/main": rule("actions"),
        }
    )
    found = config.rule_for(subject)
    assert (found.identity if found else None) == identity


def test_regex_characters_in_a_pattern_are_literal() -> None:
    config = workload({"spiffe://example.org/ns/a.b/sa/*": rule("x")})
    assert config.rule_for("spiffe://example.org/ns/a.b/sa/bot") is not None
    assert config.rule_for("spiffe://example.org/ns/aXb/sa/bot") is None


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"kind": "workload"}, "needs subjects"),
        ({"kind": "enterprise-idp", "subjects": {"a": rule()}}, "for workload issuers"),
        ({"kind": "enterprise-idp", "audience": "https://x"}, "for workload issuers"),
        ({"kind": "enterprise-idp", "single_use": False}, "always single use"),
        ({"kind": "workload", "subjects": {"a": rule()}, "pinned_users": {"a": "b"}}, "enterprise-idp"),
        ({"kind": "enterprise-idp", "algorithms": ["HS256"]}, "asymmetric"),
        ({"kind": "enterprise-idp", "algorithms": ["none"]}, "asymmetric"),
        ({"kind": "enterprise-idp", "jwks_uri": "https://k", "jwks": {"keys": []}}, "at least one key"),
        ({"kind": "enterprise-idp", "max_lifetime": 10 * 86_400}, "less than or equal"),
        ({"kind": "enterprise-idp", "issuer": "https://idp.example.com/#x"}, "without query or fragment"),
        ({"kind": "enterprise-idp", "typo": 1}, "Extra inputs"),
    ],
)
def test_an_entry_trusting_more_than_it_says_is_refused(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TrustedIssuerConfig.model_validate({"issuer": "https://idp.example.com", **entry})


def test_http_is_only_for_loopback_issuers_of_a_loopback_service() -> None:
    loopback = TrustedIssuerConfig.model_validate(
        {"issuer": "http://127.0.0.1:8123", "kind": "enterprise-idp"}
    )
    check_transport(loopback, own_issuer_on_loopback=True)
    with pytest.raises(ValueError, match="must be https"):
        check_transport(loopback, own_issuer_on_loopback=False)
    remote = TrustedIssuerConfig.model_validate(
        {"issuer": "http://idp.example.com", "kind": "enterprise-idp"}
    )
    with pytest.raises(ValueError, match="must be https"):
        check_transport(remote, own_issuer_on_loopback=True)

"""Aiming the metadata-document fetch bounds at someone else's host (oauth/outbound_fetches.py).

Anyone can name document hosts of their own (a wildcard DNS zone gives any number of them) that answer
slowly, and so fill every overall fetch slot. A well-behaved host's fetch (claude.ai's document, when its
stored copy expires) then waits for a slot until the deadline: that request is refused, but the host did
nothing wrong and must not be remembered as failing, which would refuse its clients for everyone for
`failing_host_seconds` after the attacker stops.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest

from mcp_auth_server.oauth.client_id_metadata_document import InvalidMetadataDocument, MetadataDocumentFetcher
from mcp_auth_server.oauth.outbound_fetches import FetchLimits, OutboundFetches
from mcp_testing.background_server import BackgroundServer
from mcp_testing.document_host import DocumentHost
from mcp_testing.tls import ServerCertificate, make_certificates

from ..flow import CALLBACK

LIMITS = FetchLimits(deadline_seconds=0.3, per_host=2, overall=4, failing_host_seconds=30)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> ServerCertificate:
    return make_certificates(tmp_path_factory.mktemp("tls"))


async def test_slow_hosts_filling_every_fetch_slot_do_not_get_a_good_host_remembered_as_failing() -> None:
    fetches: OutboundFetches[str] = OutboundFetches(LIMITS)

    async def dribbling() -> str:
        return await asyncio.sleep(10, "late")

    async def good() -> str:
        return await asyncio.sleep(0.05, "document")  # a real host's round trips

    attackers: list[asyncio.Future[str]] = []
    for n in range(120):  # a steady stream of fresh slow hosts, as a wildcard DNS zone gives
        host = f"a{n}.evil.example"
        attackers.append(asyncio.ensure_future(fetches.fetch(host, f"https://{host}/x", dribbling)))
        await asyncio.sleep(0.005)
        if n == 30:  # every slot is taken and more are queued: the good host's document is needed now
            victim = asyncio.ensure_future(fetches.fetch("claude.ai", "https://claude.ai/oauth/client", good))
    await asyncio.gather(victim, *attackers, return_exceptions=True)
    assert fetches.is_failing("a0.evil.example")  # a slow host that had its slot is remembered
    assert not fetches.is_failing("claude.ai")  # it was never given its time: nothing to hold against it
    assert await fetches.fetch("claude.ai", "https://claude.ai/oauth/client", good) == "document"


async def test_slow_dns_names_filling_every_lookup_thread_do_not_get_a_good_host_remembered_as_failing(
    certificates: ServerCertificate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same through DNS: names under the attacker's zone whose name server answers late hold every
    lookup thread (a lookup abandoned at the deadline keeps its thread until the system resolver gives
    up). The slow name server is played by wrapping `socket.getaddrinfo` for those names only; the
    fetcher itself runs as in production."""
    real_getaddrinfo = socket.getaddrinfo

    def late_for_the_attackers_zone(host: str, *args: Any, **kwargs: Any) -> Any:
        if host.endswith(".evil.example"):
            time.sleep(2)  # then the name does not resolve
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", late_for_the_attackers_zone)
    documents = DocumentHost()
    with BackgroundServer(documents, tls=certificates) as server:
        good = server.base_url.replace("127.0.0.1", "localhost") + "/client.json"
        documents.put_json("/client.json", {"client_id": good, "redirect_uris": [CALLBACK]})
        fetcher = MetadataDocumentFetcher(
            allow_loopback=True,
            allowed_schemes=(),
            ca_bundle=certificates.ca_file,
            limits=FetchLimits(deadline_seconds=0.5, resolver_threads=2),
        )
        try:
            attackers = [
                asyncio.ensure_future(fetcher.fetch(f"https://a{n}.evil.example/x")) for n in range(2)
            ]
            await asyncio.sleep(0.1)  # both lookup threads are held by the attacker's names
            with pytest.raises(InvalidMetadataDocument):
                await fetcher.fetch(good)  # no lookup could be made in time: refused, for now
            await asyncio.gather(*attackers, return_exceptions=True)
            await asyncio.sleep(2)  # the attacker's lookups have given up
            document = await fetcher.fetch(good)  # not "failed recently": the host was never at fault
            assert document.client_id == good
        finally:
            await fetcher.aclose()

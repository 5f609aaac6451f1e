"""Which URLs the download handler may fetch: http(s) only, and only public addresses unless allowed.

An output URL comes from a signed delivery, but a leaked secret or a compromised provider account must not
turn the receiver into a proxy to the machine's own services or its cloud metadata endpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

    from receiver.handlers.context import Resolver

import dataclasses
import ipaddress


class RefusedURL(Exception):
    """The URL is not one the download handler will fetch; the message says why. ``permanent`` unless the
    refusal may pass by itself (a host that does not resolve right now)."""

    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message)
        self.permanent = permanent


# Cloud metadata services outside the link-local range: Alibaba Cloud's (inside carrier-grade NAT space) and
# AWS's over IPv6. Like 169.254.0.0/16 they are never fetched, whatever the settings.
METADATA_NETWORKS = (ipaddress.ip_network("100.100.100.200/32"), ipaddress.ip_network("fd00:ec2::254/128"))

# Not globally routable, though some Python versions' ``is_global`` says otherwise: carrier-grade NAT (Tailscale,
# cloud VPCs) and the IETF protocol assignments block.
NON_GLOBAL_NETWORKS = (ipaddress.ip_network("100.64.0.0/10"), ipaddress.ip_network("192.0.0.0/24"))


@dataclasses.dataclass(frozen=True, slots=True)
class AddressPolicy:
    allow_loopback: bool = False
    allow_private: bool = False

    def refusal(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
        """Why ``address`` is refused, or ``None`` when it is allowed: only globally routable addresses are
        fetched by default; loopback and the other non-global ranges only when a setting allows them."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if address.is_loopback:
            return None if self.allow_loopback else "a loopback address (set WAVEHOOK_DOWNLOAD_ALLOW_LOOPBACK)"
        # Link-local holds the cloud metadata endpoint (169.254.169.254): never fetched, whatever the settings.
        if address.is_link_local or any(address in network for network in METADATA_NETWORKS):
            return "a link-local or cloud metadata address"
        if address.is_multicast or address.is_unspecified or address.is_reserved:
            return "a multicast, unspecified or reserved address"
        if not address.is_global or any(address in network for network in NON_GLOBAL_NETWORKS):
            # Private ranges, carrier-grade NAT (100.64.0.0/10), IETF, benchmarking and documentation ranges.
            return (
                None
                if self.allow_private
                else "a private or otherwise non-global address (set WAVEHOOK_DOWNLOAD_ALLOW_PRIVATE)"
            )
        return None


async def check_url(url: str, policy: AddressPolicy, resolve: Resolver) -> httpx.URL:
    """Parse ``url`` and refuse it unless it is http(s) and every address its host resolves to is allowed."""
    import httpx  # here, not at the top: a process imports it when it first fetches, not when it starts

    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise RefusedURL(f"{url!r} is not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise RefusedURL(f"{url!r}: only http and https URLs are fetched, not {parsed.scheme or 'none'!r}")
    host = parsed.host
    if not host:
        raise RefusedURL(f"{url!r} has no host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            addresses = [ipaddress.ip_address(found.split("%")[0]) for found in await resolve(host, port)]
        except OSError as exc:
            raise RefusedURL(f"{url!r}: host {host!r} does not resolve: {exc}", permanent=False) from None
    if not addresses:
        raise RefusedURL(f"{url!r}: host {host!r} resolves to no address")
    for address in addresses:
        reason = policy.refusal(address)
        if reason is not None:
            raise RefusedURL(f"{url!r}: host {host!r} resolves to {address}, {reason}")
    return parsed

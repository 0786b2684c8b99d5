"""Sync between two memories over real QUIC sockets on loopback: a hub served from Python and
a peer that pulls and pushes, with the facade's one sync driver."""

from __future__ import annotations

from pathlib import Path

import pytest

import reasonbank
from reasonbank import AgentMemory, ReasonbankError


def test_sync_both_ways(tmp_path: Path) -> None:
    hub_id = reasonbank.generate_identity("hub")
    me_id = reasonbank.generate_identity("me")
    hub = AgentMemory.open(tmp_path / "hub", "team")
    me = AgentMemory.open(tmp_path / "me", "team")
    hub.remember("The hub knows about retries with backoff")
    mine = me.remember("The peer knows how to deploy to staging")
    with hub.serve(
        "127.0.0.1:0",
        [{"fingerprint": me_id.fingerprint, "shards": ["team"], "access": "read_write"}],
        cert_pem=hub_id.cert_pem,
        key_pem=hub_id.key_pem,
    ) as server:
        assert server.fingerprint == hub_id.fingerprint
        [report] = me.sync(server.address, server.fingerprint, cert_pem=me_id.cert_pem, key_pem=me_id.key_pem)
        assert (report.shard, report.sent, report.received, report.applied) == ("team", 1, 1, 1)
        assert hub.get(mine) is not None
        assert me.stats().records == hub.stats().records == 2
        [again] = me.sync(server.address, server.fingerprint, direction="pull", cert_pem=me_id.cert_pem, key_pem=me_id.key_pem)
        assert again.received == 0

        stranger = reasonbank.generate_identity("stranger")
        with pytest.raises(ReasonbankError) as e:
            me.sync(server.address, stranger.fingerprint, cert_pem=me_id.cert_pem, key_pem=me_id.key_pem)
        assert e.value.code in ("RB_SYNC_NETWORK", "RB_SYNC_DENIED")
        with pytest.raises(ReasonbankError) as e:
            me.sync(server.address, server.fingerprint, direction="sideways", cert_pem=me_id.cert_pem, key_pem=me_id.key_pem)  # type: ignore[arg-type]
        assert e.value.code == "RB_INVALID_INPUT"
        with pytest.raises(ReasonbankError) as e:
            me.sync(server.address, server.fingerprint)
        assert e.value.code == "RB_INVALID_INPUT" and "reasonbank sync keygen" in str(e.value)

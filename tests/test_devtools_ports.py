"""The ports the test fixtures give their servers: rules checked on this machine's kernel."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from devtools import proc
from devtools.proc import free_ports


def ephemeral_range() -> tuple[int, int]:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(low), int(high)


def test_a_server_port_is_never_one_an_outgoing_connection_can_take() -> None:
    # CI failed on this: the web stack's groups service was given a port from a bind to
    # port 0, and before it bound the port a Kafka client connected out from it
    # ("[Errno 98] ... address already in use").
    low, high = ephemeral_range()
    ports = free_ports(50)
    assert [port for port in ports if low <= port <= high] == []


def test_ports_are_never_handed_out_twice_and_can_be_bound() -> None:
    ports = free_ports(20) + free_ports(20)
    assert len(set(ports)) == 40
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_in_use_is_not_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    taken, *spare = free_ports(3)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listening:
        listening.bind(("127.0.0.1", taken))
        listening.listen()
        proc._ports_handed_out.difference_update([taken, *spare])
        monkeypatch.setattr(proc, "_ports_outside_the_ephemeral_range", lambda: [taken, *spare])
        monkeypatch.setattr(proc.random, "shuffle", lambda ports: None)
        assert sorted(free_ports(2)) == sorted(spare)


def test_a_kernel_that_leaves_no_room_outside_its_range_still_gives_free_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole_range = tmp_path / "ip_local_port_range"
    whole_range.write_text("1024\t65535\n")
    monkeypatch.setattr(proc, "_EPHEMERAL_PORT_RANGE", whole_range)
    ports = free_ports(5)
    assert len(set(ports)) == 5
    assert all(1024 <= port <= 65535 for port in ports)

"""start_site: a bind that fails says why and what to do next."""

import socket

import pytest
from aiohttp import web

from fleetpulse.core.listen import Listen
from fleetpulse.core.site import start_site


async def test_a_busy_port_says_to_pick_another_or_stop_its_owner() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError) as info:
            await start_site(web.Application(), Listen("127.0.0.1", port))
    assert str(info.value) == (
        f"cannot listen on 127.0.0.1:{port}: address already in use; "
        "pick another address or stop the process using it"
    )


async def test_an_address_the_machine_does_not_have_is_named_as_such() -> None:
    # 192.0.2.0/24 is TEST-NET-1: never assigned to a real interface, and a bind sends nothing
    with pytest.raises(OSError) as info:
        await start_site(web.Application(), Listen("192.0.2.1", 0))
    assert str(info.value) == (
        "cannot listen on 192.0.2.1:0: cannot assign requested address; "
        "this machine has no such address; use one of its own, or 0.0.0.0"
    )

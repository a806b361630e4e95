"""Taking the socket launchd holds (``launch_activate_socket``), with real sockets and a stand-in for libSystem.

There is no macOS here: the stand-in answers the way launch_activate_socket(3) documents (0 and a malloc'd array of
descriptors, or an errno), so the glue around it (how many sockets, freeing the array, the same checks as a
systemd socket) runs for real.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
from typing import Any

import pytest

from govuk_imds.daemon.activation import launchd_listener
from govuk_imds.errors import InheritedSocketRefused


class LibSystem:
    """launch_activate_socket and free, as libSystem has them."""

    def __init__(self, descriptors: list[int], status: int = 0) -> None:
        self.descriptors = descriptors
        self.status = status
        self.names: list[bytes] = []
        self.freed = 0
        self._array: Any = None

    def launch_activate_socket(self, name: bytes, descriptors: Any, count: Any) -> int:
        self.names.append(name)
        if self.status:
            return self.status
        self._array = (ctypes.c_int * len(self.descriptors))(*self.descriptors)
        pointer_slot = ctypes.cast(ctypes.byref(descriptors._obj), ctypes.POINTER(ctypes.c_void_p))
        pointer_slot[0] = ctypes.addressof(self._array)
        count._obj.value = len(self.descriptors)
        return 0

    def free(self, pointer: Any) -> None:
        self.freed += 1


def listening(host: str = "127.0.0.1") -> socket.socket:
    listener = socket.socket()
    listener.bind((host, 0))
    listener.listen()
    return listener


def is_open(descriptor: int) -> bool:
    try:
        os.fstat(descriptor)
    except OSError:
        return False
    return True


def test_the_one_loopback_socket_launchd_holds_is_taken_and_the_array_freed() -> None:
    held = listening()
    port = held.getsockname()[1]
    library = LibSystem([os.dup(held.fileno())])
    listener = launchd_listener(expected_port=port, library=library)
    assert listener is not None
    assert listener.getsockname() == ("127.0.0.1", port)
    assert not listener.getblocking() and not listener.get_inheritable()
    assert library.names == [b"Listener"]
    assert library.freed == 1
    listener.close()
    held.close()


@pytest.mark.parametrize("status", [errno.ESRCH, errno.ENOENT])
def test_not_run_by_launchd_or_no_socket_in_the_plist_means_bind_it_yourself(status: int) -> None:
    assert launchd_listener(library=LibSystem([], status)) is None


def test_another_error_from_launchd_is_refused_with_the_fix() -> None:
    with pytest.raises(InheritedSocketRefused, match="govuk-imds service install"):
        launchd_listener(library=LibSystem([], errno.EALREADY))


def test_two_sockets_are_refused_and_both_closed() -> None:
    first, second = listening(), listening()
    descriptors = [os.dup(first.fileno()), os.dup(second.fileno())]
    library = LibSystem(descriptors)
    with pytest.raises(InheritedSocketRefused, match="exactly one"):
        launchd_listener(library=library)
    assert not any(is_open(descriptor) for descriptor in descriptors)
    assert library.freed == 1
    first.close()
    second.close()


def test_a_socket_on_every_address_is_refused_and_closed() -> None:
    everywhere = listening("0.0.0.0")
    descriptor = os.dup(everywhere.fileno())
    with pytest.raises(InheritedSocketRefused, match="not loopback-only"):
        launchd_listener(library=LibSystem([descriptor]))
    assert not is_open(descriptor)
    everywhere.close()

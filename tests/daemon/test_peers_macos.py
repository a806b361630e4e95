"""The libproc structures of ``daemon/peers_macos.py``, checked against xnu's ``<sys/proc_info.h>`` on any machine:
the module cannot run here (no Mac), but a field typed or placed wrongly changes these sizes and offsets. The
expected values are the header's (``PROC_PIDFDSOCKETINFO_SIZE`` is 792, ``PROC_PIDTBSDINFO_SIZE`` 136,
``PROC_PIDVNODEPATHINFO_SIZE`` 2352)."""

from __future__ import annotations

import ctypes

import pytest

from govuk_imds.daemon import peers_macos


@pytest.mark.parametrize(
    ("structure", "size"),
    [
        ("ProcFdInfo", 8),
        ("ProcFileInfo", 24),
        ("VinfoStat", 136),
        ("InSockinfo", 80),
        ("TcpSockinfo", 120),
        ("UnSockinfo", 528),
        ("SocketInfo", 768),
        ("SocketFdInfo", 792),
        ("ProcBsdInfo", 136),
        ("ProcVnodePathInfo", 2352),
    ],
)
def test_each_structure_has_the_headers_size(structure: str, size: int) -> None:
    assert ctypes.sizeof(getattr(peers_macos, structure)) == size


def test_the_fields_read_sit_where_the_header_puts_them() -> None:
    assert peers_macos.InSockinfo.insi_fport.offset == 0
    assert peers_macos.InSockinfo.insi_lport.offset == 4
    assert peers_macos.InSockinfo.insi_faddr.offset == 32
    assert peers_macos.SocketInfo.soi_kind.offset == 232
    assert peers_macos.SocketInfo.soi_proto.offset == 240
    assert peers_macos.SocketFdInfo.psi.offset == 24
    assert peers_macos.ProcBsdInfo.pbi_ppid.offset == 16
    assert peers_macos.ProcBsdInfo.pbi_comm.offset == 48
    assert peers_macos.VnodeInfoPath.vip_path.offset == 152

"""Which process is at the other end of a loopback TCP connection to the daemon, on macOS: libproc through ctypes.

UNTESTED: no Mac was available. It is written from xnu's ``<sys/proc_info.h>`` (the structures below) and
``proc_pidfdinfo(3)``-style use as lsof's darwin dialect makes it; ``tests/daemon/test_peers_macos.py`` pins the
structure sizes the header gives (``socket_fdinfo`` is 792 bytes) so a typo in a field shows on any machine. Check
on a Mac: ``govuk-imds audit`` after an ``aws sts get-caller-identity`` must name the aws process.

macOS has no socket table to look a connection up in, and no peer pid for TCP (``LOCAL_PEERPID`` is for Unix
sockets), so the whole search runs in the worker thread: every process of our uid (``proc_listpids``), newest pid
first after the previous callers, every TCP socket descriptor of each (``proc_pidfdinfo``), until one has the
client's port as its local port and ours as its remote port. Other users' processes cannot be inspected, and a
connection from one is reported as not found. The chain comes from ``proc_pidinfo(PROC_PIDTBSDINFO)`` (parent and
name), ``proc_pidpath`` (the executable), ``PROC_PIDVNODEPATHINFO`` (the working directory) and
``sysctl(KERN_PROCARGS2)`` (argv, and the environment's
``npm_lifecycle_event``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
from collections.abc import Callable, Sequence

from ..core.callers import MAX_CHAIN, Caller, ClientSocket, Process

_PROC_UID_ONLY = 4
_PROC_PIDLISTFDS = 1
_PROC_PIDTBSDINFO = 3
_PROC_PIDVNODEPATHINFO = 9
_PROC_PIDFDSOCKETINFO = 3
_PROX_FDTYPE_SOCKET = 2
_SOCKINFO_TCP = 2
_INI_IPV4 = 0x1
_PROC_PIDPATHINFO_MAXSIZE = 4 * 1024
_CTL_KERN = 1
_KERN_PROCARGS2 = 49
_MAX_ARGUMENTS = 64
_MAX_ARGUMENT = 512

c_u8, c_u16, c_u32, c_u64 = ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32, ctypes.c_uint64
c_i16, c_i32, c_i64 = ctypes.c_int16, ctypes.c_int32, ctypes.c_int64


class ProcFdInfo(ctypes.Structure):
    _fields_ = (("proc_fd", c_i32), ("proc_fdtype", c_u32))


class ProcFileInfo(ctypes.Structure):
    _fields_ = (("fi_openflags", c_u32), ("fi_status", c_u32), ("fi_offset", c_i64), ("fi_type", c_i32),
                ("fi_guardflags", c_u32))


class VinfoStat(ctypes.Structure):
    _fields_ = (("vst_dev", c_u32), ("vst_mode", c_u16), ("vst_nlink", c_u16), ("vst_ino", c_u64),
                ("vst_uid", c_u32), ("vst_gid", c_u32), ("vst_times", c_i64 * 8), ("vst_size", c_i64),
                ("vst_blocks", c_i64), ("vst_blksize", c_i32), ("vst_flags", c_u32), ("vst_gen", c_u32),
                ("vst_rdev", c_u32), ("vst_qspare", c_i64 * 2))


class SockbufInfo(ctypes.Structure):
    _fields_ = (("sbi_cc", c_u32), ("sbi_hiwat", c_u32), ("sbi_mbcnt", c_u32), ("sbi_mbmax", c_u32),
                ("sbi_lowat", c_u32), ("sbi_flags", c_i16), ("sbi_timeo", c_i16))


class InSockinfoV6(ctypes.Structure):
    _fields_ = (("in6_hlim", c_u8), ("in6_cksum", c_i32), ("in6_ifindex", c_u16), ("in6_hops", c_i16))


class InSockinfo(ctypes.Structure):
    # insi_faddr / insi_laddr are unions of in4in6_addr (3 pad words, then the IPv4 address) and in6_addr.
    _fields_ = (("insi_fport", c_i32), ("insi_lport", c_i32), ("insi_gencnt", c_u64), ("insi_flags", c_u32),
                ("insi_flow", c_u32), ("insi_vflag", c_u8), ("insi_ip_ttl", c_u8), ("rfu_1", c_u32),
                ("insi_faddr", c_u32 * 4), ("insi_laddr", c_u32 * 4), ("insi_v4_tos", c_u8),
                ("insi_v6", InSockinfoV6))


class TcpSockinfo(ctypes.Structure):
    _fields_ = (("tcpsi_ini", InSockinfo), ("tcpsi_state", c_i32), ("tcpsi_timer", c_i32 * 4),
                ("tcpsi_mss", c_i32), ("tcpsi_flags", c_u32), ("rfu_1", c_u32), ("tcpsi_tp", c_u64))


class UnSockinfo(ctypes.Structure):
    # SOCK_MAXADDRLEN (255) is larger than sockaddr_un (106), so each address union is 255 bytes.
    _fields_ = (("unsi_conn_so", c_u64), ("unsi_conn_pcb", c_u64), ("unsi_addr", ctypes.c_char * 255),
                ("unsi_caddr", ctypes.c_char * 255))


class SocketProto(ctypes.Union):
    # The largest members fix the size; the smaller kinds (ndrv, kern event, kern ctl, vsock) fit inside.
    _fields_ = (("pri_in", InSockinfo), ("pri_tcp", TcpSockinfo), ("pri_un", UnSockinfo))


class SocketInfo(ctypes.Structure):
    _fields_ = (("soi_stat", VinfoStat), ("soi_so", c_u64), ("soi_pcb", c_u64), ("soi_type", c_i32),
                ("soi_protocol", c_i32), ("soi_family", c_i32), ("soi_options", c_i16), ("soi_linger", c_i16),
                ("soi_state", c_i16), ("soi_qlen", c_i16), ("soi_incqlen", c_i16), ("soi_qlimit", c_i16),
                ("soi_timeo", c_i16), ("soi_error", c_u16), ("soi_oobmark", c_u32), ("soi_rcv", SockbufInfo),
                ("soi_snd", SockbufInfo), ("soi_kind", c_i32), ("rfu_1", c_u32), ("soi_proto", SocketProto))


class SocketFdInfo(ctypes.Structure):
    _fields_ = (("pfi", ProcFileInfo), ("psi", SocketInfo))


class ProcBsdInfo(ctypes.Structure):
    _fields_ = (("pbi_flags", c_u32), ("pbi_status", c_u32), ("pbi_xstatus", c_u32), ("pbi_pid", c_u32),
                ("pbi_ppid", c_u32), ("pbi_uid", c_u32), ("pbi_gid", c_u32), ("pbi_ruid", c_u32),
                ("pbi_rgid", c_u32), ("pbi_svuid", c_u32), ("pbi_svgid", c_u32), ("rfu_1", c_u32),
                ("pbi_comm", ctypes.c_char * 16), ("pbi_name", ctypes.c_char * 32), ("pbi_nfiles", c_u32),
                ("pbi_pgid", c_u32), ("pbi_pjobc", c_u32), ("e_tdev", c_u32), ("e_tpgid", c_u32),
                ("pbi_nice", c_i32), ("pbi_start_tvsec", c_u64), ("pbi_start_tvusec", c_u64))


class VnodeInfoPath(ctypes.Structure):
    # vnode_info (vinfo_stat, vi_type, vi_pad, fsid_t) then the path (MAXPATHLEN).
    _fields_ = (("vi_stat", VinfoStat), ("vi_type", c_i32), ("vi_pad", c_i32), ("vi_fsid", c_i32 * 2),
                ("vip_path", ctypes.c_char * 1024))


class ProcVnodePathInfo(ctypes.Structure):
    _fields_ = (("pvi_cdir", VnodeInfoPath), ("pvi_rdir", VnodeInfoPath))


class MacPeers:
    """``daemon.callers.Peers`` on macOS: nothing to do on the event loop; the scan runs in the worker."""

    def __init__(self) -> None:
        self._lib = ctypes.CDLL(ctypes.util.find_library("proc") or "/usr/lib/libproc.dylib", use_errno=True)
        self._libc = ctypes.CDLL(None, use_errno=True)

    def close(self) -> None:
        pass

    def locate(self, peer: tuple[str, int], local: tuple[str, int]) -> ClientSocket | str:
        return ClientSocket(peer, local)

    def identify(
        self, client: ClientSocket, recent: Sequence[int], wanted: Callable[[], bool] = lambda: True
    ) -> Caller:
        pid = self.find_pid(client.peer[1], client.local[1], recent) if wanted() else None
        if pid is None:
            return Caller(problem="no process of this user holds the connection (it hung up, or belongs to "
                                  "another user)")
        processes = self.chain(pid)
        if not processes:
            return Caller(problem="the calling process ended before it could be read")
        return Caller(uid=os.getuid(), chain=processes, npm_script=self._arguments(pid)[1])

    def find_pid(self, peer_port: int, our_port: int, recent: Sequence[int]) -> int | None:
        me = os.getpid()
        candidates = list(dict.fromkeys([*recent, *sorted(self._our_pids(), reverse=True)]))
        for pid in candidates:
            if pid != me and self._holds(pid, peer_port, our_port):
                return pid
        return None

    def _our_pids(self) -> list[int]:
        size = self._lib.proc_listpids(_PROC_UID_ONLY, os.getuid(), None, 0)
        if size <= 0:
            return []
        buffer = (c_i32 * (size // 4 + 64))()
        size = self._lib.proc_listpids(_PROC_UID_ONLY, os.getuid(), buffer, ctypes.sizeof(buffer))
        return [pid for pid in buffer[: max(size, 0) // 4] if pid > 0]

    def _holds(self, pid: int, peer_port: int, our_port: int) -> bool:
        size = self._lib.proc_pidinfo(pid, _PROC_PIDLISTFDS, c_u64(0), None, 0)
        if size <= 0:
            return False
        descriptors = (ProcFdInfo * (size // ctypes.sizeof(ProcFdInfo) + 16))()
        size = self._lib.proc_pidinfo(pid, _PROC_PIDLISTFDS, c_u64(0), descriptors, ctypes.sizeof(descriptors))
        info = SocketFdInfo()
        for descriptor in descriptors[: max(size, 0) // ctypes.sizeof(ProcFdInfo)]:
            if descriptor.proc_fdtype != _PROX_FDTYPE_SOCKET:
                continue
            got = self._lib.proc_pidfdinfo(pid, descriptor.proc_fd, _PROC_PIDFDSOCKETINFO, ctypes.byref(info),
                                           ctypes.sizeof(info))
            if got < ctypes.sizeof(info) or info.psi.soi_kind != _SOCKINFO_TCP:
                continue
            tcp = info.psi.soi_proto.pri_tcp.tcpsi_ini
            # Ports are kept in network byte order in the low 16 bits of an int.
            if (socket.ntohs(tcp.insi_lport & 0xFFFF) == peer_port
                    and socket.ntohs(tcp.insi_fport & 0xFFFF) == our_port):
                return True
        return False

    def read_process(self, pid: int) -> Process | None:
        info = ProcBsdInfo()
        if self._lib.proc_pidinfo(pid, _PROC_PIDTBSDINFO, c_u64(0), ctypes.byref(info), ctypes.sizeof(info)) <= 0:
            return None
        path = ctypes.create_string_buffer(_PROC_PIDPATHINFO_MAXSIZE)
        length = self._lib.proc_pidpath(pid, path, ctypes.sizeof(path))
        exe = path.value.decode("utf-8", "replace") if length > 0 else None
        name = (info.pbi_name or info.pbi_comm).decode("utf-8", "replace")
        directories = ProcVnodePathInfo()
        got = self._lib.proc_pidinfo(pid, _PROC_PIDVNODEPATHINFO, c_u64(0), ctypes.byref(directories),
                                     ctypes.sizeof(directories))
        cwd = directories.pvi_cdir.vip_path.decode("utf-8", "replace") if got > 0 else None
        return Process(pid=pid, ppid=int(info.pbi_ppid), name=name, exe=exe, argv=self._arguments(pid)[0], cwd=cwd)

    def chain(self, pid: int) -> tuple[Process, ...]:
        processes: list[Process] = []
        while pid > 0 and len(processes) < MAX_CHAIN:
            process = self.read_process(pid)
            if process is None:
                break
            processes.append(process)
            if process.ends_chain():
                break
            pid = process.ppid
        return tuple(processes)

    def _arguments(self, pid: int) -> tuple[tuple[str, ...], str | None]:
        """argv and ``npm_lifecycle_event`` from ``KERN_PROCARGS2``: argc, the exec path, padding, argv, environ."""
        mib = (ctypes.c_int * 3)(_CTL_KERN, _KERN_PROCARGS2, pid)
        buffer = ctypes.create_string_buffer(256 * 1024)
        size = ctypes.c_size_t(ctypes.sizeof(buffer))
        if self._libc.sysctl(mib, 3, buffer, ctypes.byref(size), None, ctypes.c_size_t(0)) != 0:
            return (), None
        raw = buffer.raw[: size.value]
        if len(raw) < 4:
            return (), None
        argc = int.from_bytes(raw[:4], "little")
        rest = raw[4:]
        rest = rest[rest.find(b"\0") :].lstrip(b"\0")  # skip the exec path and its padding
        items = rest.split(b"\0")
        argv = tuple(item[:_MAX_ARGUMENT].decode("utf-8", "replace") for item in items[: min(argc, _MAX_ARGUMENTS)])
        script = None
        for item in items[argc:]:
            if item.startswith(b"npm_lifecycle_event="):
                script = item.split(b"=", 1)[1][:64].decode("utf-8", "replace")
                break
        return argv, script

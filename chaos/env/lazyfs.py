"""A pass-through filesystem that keeps written data in memory until it is fsynced, as lazyfs does.

Run in a process of its own (`python -m chaos.env.lazyfs BACKING MOUNT SOCKET`) over FUSE. Every
metadata operation (create, mkdir, rename, unlink, link) goes to the backing directory at once; the
data written to a file stays in this process's memory, the file's whole content as its writers see
it, until an fsync of that file writes it through and fsyncs it. Closing a file persists nothing.
On the control socket, `drop` forgets every write not fsynced (a power cut: the page cache is gone,
the names are not, and a file renamed before its data was fsynced comes back short or empty), and
`sync` persists them all (a clean shutdown). Each answers with how many files it touched.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import threading
from pathlib import Path
from typing import Any

import mfusepy

STAT_FIELDS = ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_atime", "st_mtime", "st_ctime")
STATVFS_FIELDS = ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files", "f_ffree", "f_favail",
                  "f_flag", "f_namemax")


class LazyFS(mfusepy.Operations):
    use_ns = True

    def __init__(self, backing: Path):
        self.backing = str(backing)
        self._guard = threading.RLock()
        self.dirty: dict[str, bytearray] = {}
        """Path in the mount -> the file's content as written, for every file with writes not fsynced."""

    def _real(self, path: str) -> str:
        return self.backing + path

    def _content(self, path: str) -> bytearray:
        """The file's dirty content, loaded from the backing file on its first write."""
        content = self.dirty.get(path)
        if content is None:
            with open(self._real(path), "rb") as file:
                content = self.dirty[path] = bytearray(file.read())
        return content

    def _persist(self, path: str) -> bool:
        content = self.dirty.pop(path, None)
        if content is None:
            return False
        with open(self._real(path), "r+b") as file:
            file.write(content)
            file.truncate(len(content))
            os.fsync(file.fileno())
        return True

    def drop(self) -> int:
        with self._guard:
            dropped = len(self.dirty)
            self.dirty.clear()
        return dropped

    def sync(self) -> int:
        with self._guard:
            return sum(self._persist(path) for path in list(self.dirty))

    # metadata: straight to the backing directory
    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        try:
            st = os.lstat(self._real(path))
        except OSError as e:
            raise mfusepy.FuseOSError(e.errno) from None
        attrs = {key: getattr(st, key) for key in STAT_FIELDS}
        attrs.update(st_atime=st.st_atime_ns, st_mtime=st.st_mtime_ns, st_ctime=st.st_ctime_ns)
        with self._guard:
            if path in self.dirty:
                attrs["st_size"] = len(self.dirty[path])
        return attrs

    def readdir(self, path: str, fh: int) -> list[str]:
        return [".", "..", *os.listdir(self._real(path))]

    def access(self, path: str, amode: int) -> int:
        if not os.access(self._real(path), amode):
            raise mfusepy.FuseOSError(errno.EACCES)
        return 0

    def mkdir(self, path: str, mode: int) -> int:
        os.mkdir(self._real(path), mode)
        return 0

    def rmdir(self, path: str) -> int:
        os.rmdir(self._real(path))
        return 0

    def unlink(self, path: str) -> int:
        with self._guard:
            os.unlink(self._real(path))
            self.dirty.pop(path, None)
        return 0

    def rename(self, old: str, new: str) -> int:
        with self._guard:
            os.rename(self._real(old), self._real(new))
            for path in [p for p in self.dirty if p == new or p.startswith(new + "/")]:
                del self.dirty[path]  # what the rename replaced
            for path in [p for p in self.dirty if p == old or p.startswith(old + "/")]:
                self.dirty[new + path[len(old):]] = self.dirty.pop(path)
        return 0

    def link(self, target: str, source: str) -> int:
        with self._guard:
            os.link(self._real(source), self._real(target))
            if source in self.dirty:
                self.dirty[target] = self.dirty[source]  # one inode: one content
        return 0

    def chmod(self, path: str, mode: int) -> int:
        os.chmod(self._real(path), mode)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        os.chown(self._real(path), uid, gid)
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        os.utime(self._real(path), ns=times)
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        stv = os.statvfs(self._real(path))
        return {key: getattr(stv, key) for key in STATVFS_FIELDS}

    # data: in memory until fsync
    def create(self, path: str, mode: int, fi: Any = None) -> int:
        with self._guard:
            os.close(os.open(self._real(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode))
            self.dirty[path] = bytearray()
        return 0

    def open(self, path: str, flags: int) -> int:
        if flags & os.O_TRUNC:
            self.truncate(path, 0)
        return 0

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        with self._guard:
            if path in self.dirty:
                return bytes(self.dirty[path][offset:offset + size])
        with open(self._real(path), "rb") as file:
            file.seek(offset)
            return file.read(size)

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        with self._guard:
            content = self._content(path)
            if offset > len(content):
                content.extend(bytes(offset - len(content)))
            content[offset:offset + len(data)] = data
        return len(data)

    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        with self._guard:
            content = self._content(path)
            if length < len(content):
                del content[length:]
            else:
                content.extend(bytes(length - len(content)))
        return 0

    def fsync(self, path: str, datasync: int, fh: int) -> int:
        with self._guard:
            self._persist(path)
        return 0

    def flush(self, path: str, fh: int) -> int:
        return 0

    def release(self, path: str, fh: int) -> int:
        return 0

    def fsyncdir(self, path: str, datasync: int, fh: int) -> int:
        return 0


def serve_control(fs: LazyFS, path: str) -> None:
    """Answer `drop` and `sync` on a Unix socket, one command per connection."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(4)
    while True:
        connection, _ = server.accept()
        with connection:
            command = connection.recv(64).decode().strip()
            count = fs.drop() if command == "drop" else fs.sync() if command == "sync" else -1
            connection.sendall(f"{count}\n".encode())


def main(argv: list[str]) -> None:
    backing, mount, control = argv
    fs = LazyFS(Path(backing))
    threading.Thread(target=serve_control, args=(fs, control), name="lazyfs-control", daemon=True).start()
    # No kernel caching of attributes or names: a drop must show at once.
    mfusepy.FUSE(fs, mount, foreground=True, attr_timeout=0, entry_timeout=0, negative_timeout=0)


if __name__ == "__main__":
    main(sys.argv[1:])

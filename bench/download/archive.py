"""Zip and tar archives behind one small interface: list members, stream one out atomically."""

import hashlib
import shutil
import tarfile
import zipfile
import zlib
from pathlib import Path

from bench.common.atomic import atomic_path
from bench.common.errors import BenchError
from bench.common.progress import byte_progress
from bench.common.replace_rule import DOWNLOAD

COPY_BLOCK = 8 << 20


class Archive:
    """Read-only view of a zip or tar file (tar may be gzip/bz2/xz compressed)."""

    def __init__(self, path: Path):
        self.path = path
        try:
            if zipfile.is_zipfile(path):
                self._zip = zipfile.ZipFile(path)
                self._sizes = {i.filename: i.file_size for i in self._zip.infolist() if not i.is_dir()}
            else:
                self._zip = None
                self._tar = tarfile.open(path)
                self._sizes = {m.name: m.size for m in self._tar.getmembers() if m.isfile()}
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
            raise BenchError(f"{path}: unreadable archive ({err}); delete it and download again") from None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        (self._zip or self._tar).close()

    def names(self) -> list[str]:
        return list(self._sizes)

    def size(self, name: str) -> int:
        return self._sizes[name]

    def open(self, name: str):
        """A binary stream of member `name` (also for reading a header without extracting)."""
        return self._zip.open(name) if self._zip else self._tar.extractfile(name)

    def check_size(self, name: str, limit: int, size: int) -> None:
        if size > limit:
            raise BenchError(f"{self.path}: member {name} is larger than any such file can be "
                             f"({size / 2**20:.0f} MiB, at most {limit / 2**20:.0f}); not the expected archive")

    def extract(self, name: str, dest: Path, limit: int) -> str:
        """Stream member `name` to `dest` (atomically); CRC checked by zipfile. Returns sha256.
        A member that declares, or unpacks to, more than `limit` bytes is refused."""
        self.check_size(name, limit, self.size(name))
        digest = hashlib.sha256()
        try:
            with byte_progress(f"extract {Path(name).name}", self.size(name)) as update, \
                    self.open(name) as source, atomic_path(dest, DOWNLOAD) as tmp, open(tmp, "wb") as out:
                done = 0
                while block := source.read(COPY_BLOCK):
                    done += len(block)
                    self.check_size(name, limit, done)  # more than declared: a tar header can lie
                    out.write(block)
                    digest.update(block)
                    update(done)
        except (zipfile.BadZipFile, zlib.error, tarfile.TarError, EOFError, OSError) as err:
            raise BenchError(f"{self.path}: member {name} is corrupt ({err}); delete the archive and "
                             f"download it again") from None
        return digest.hexdigest()


def copy_file(source: Path, dest: Path) -> None:
    """Copy into place atomically (a file the user fetched by hand stays where it was)."""
    with atomic_path(dest, DOWNLOAD) as tmp:
        shutil.copyfile(source, tmp)

"""Atomic output: write to a temporary sibling, then rename over the target."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from napari_medseg.core.errors import WriteError

# mkstemp/mkdtemp create private (0600/0700) entries; outputs get the usual umask permissions
# instead, so colleagues sharing a review folder can read them. Read once, at import.
_UMASK = os.umask(0)
os.umask(_UMASK)


#: Temporary names: ``.<target name>.medseg-tmp-<pid>-<random>[suffix]`` and, while a folder is
#: swapped, ``.<target name>.medseg-old-<pid>``: the pid lets a later run tell a killed run's
#: leftovers (removed by :func:`remove_leftovers`) from a live run's files.
TMP_TAG, OLD_TAG = ".medseg-tmp-", ".medseg-old-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; it replaces ``target`` only on success.

    The temporary name keeps the target's suffixes so libraries that pick the format from
    the extension (nibabel, SimpleITK, PIL) write the right thing.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(target.suffixes) or ".tmp"
    prefix = f".{target.name}{TMP_TAG}{os.getpid()}-"
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(target: str | Path, keep: Iterable[str] = ()) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``target`` (a folder) only on success.

    ``keep``: paths relative to ``target`` (files we did not write) carried into the new folder
    by hard link (copy across file systems) before the swap, so they survive it.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}{TMP_TAG}{os.getpid()}-", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_UMASK)
        for rel in keep:
            dst = tmp / rel
            if dst.exists():
                raise WriteError("the export would replace a file it did not write", target / rel)
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(target / rel, dst)
            except OSError:
                shutil.copy2(target / rel, dst)
        if target.exists():
            old = target.with_name(f".{target.name}{OLD_TAG}{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_leftovers(target: str | Path) -> None:
    """Remove the temporaries a killed run left next to ``target`` (and inside it, when it is a
    folder); a folder set aside mid-swap goes back in place when ``target`` is missing."""
    target = Path(target)
    folders = [target.parent] + ([target] if target.is_dir() else [])
    for folder in folders:
        prefix = f".{target.name}" if folder == target.parent else "."
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            for tag in (TMP_TAG, OLD_TAG):
                head, sep, rest = e.name.partition(tag)
                pid = rest.split("-", 1)[0]
                if not (sep and head.startswith(prefix) and pid.isdigit()):
                    continue
                if _pid_alive(int(pid)):
                    continue
                path = Path(e.path)
                if tag == OLD_TAG and folder == target.parent and not target.exists():
                    os.replace(path, target)
                elif e.is_dir(follow_symlinks=False):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)


def write_text(target: str | Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def check_output_dir(out: str | Path, source: str | Path) -> Path:
    """Refuse an output (folder or file) that is the source data's folder or lies inside it.

    The same rule for every output: the data folder's parent and siblings are fine. For a
    single-file source, the folder holding the file counts as the data's folder.
    """
    out_r, src_r = Path(out).resolve(), Path(source).resolve()
    data = src_r if src_r.is_dir() else src_r.parent
    if out_r == data or data in out_r.parents:
        raise WriteError(
            "refusing to write inside the source data; choose another output folder", out
        )
    return Path(out)


def make_output_dir(out: str | Path, source: str | Path) -> Path:
    """:func:`check_output_dir`, then create the folder (refused when ``out`` is a file)."""
    out = check_output_dir(out, source)
    if out.exists() and not out.is_dir():
        raise WriteError("the output folder is an existing file", out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"cannot create the output folder ({exc.strerror})", out) from None
    return out

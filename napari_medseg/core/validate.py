"""Metadata files checked against pydantic models: one line naming the file and the field."""

from __future__ import annotations

import json
import os
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from napari_medseg.core.errors import ReadError

M = TypeVar("M")


class Lenient(BaseModel):
    """Base of our metadata models: unknown keys are kept, not refused (files grow keys)."""

    model_config = ConfigDict(extra="allow")


def field_name(loc: tuple) -> str:
    """``("training", 3, "image")`` -> ``training[3].image``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out.lstrip(".") or "(document)"


def validated(model: type[M], data, path: str | os.PathLike, where: str = "") -> M:
    """``data`` as ``model`` (a pydantic model or a dataclass), or :class:`ReadError` naming
    ``path`` and the first bad field (after ``where``, e.g. ``"line 3: "``)."""
    try:
        return TypeAdapter(model).validate_python(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        got = err.get("input")
        shown = (
            repr(got) if isinstance(got, str | int | float | bool | None) else type(got).__name__
        )
        problem = f"{where}{field_name(err['loc'])}: {err['msg']} (got {shown[:80]})"
        raise ReadError(problem, path) from None


def read_text(path: str | os.PathLike, encoding: str = "utf-8") -> str:
    """A text file, or :class:`ReadError` for an unreadable or wrongly encoded one."""
    try:
        with open(path, encoding=encoding) as fh:
            return fh.read()
    except UnicodeDecodeError as exc:
        raise ReadError(f"not {encoding} text (byte {exc.start}: {exc.reason})", path) from None
    except OSError as exc:
        raise ReadError(f"cannot read ({exc.strerror})", path) from None


def read_json(path: str | os.PathLike, model: type[M] | None = None):
    """A JSON file (UTF-8, no NaN/Infinity), validated against ``model`` when given."""
    try:
        data = json.loads(read_text(path), parse_constant=_refuse_constant)
    except ValueError as exc:
        raise ReadError(f"not valid JSON ({exc})", path) from None
    return data if model is None else validated(model, data, path)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON value")

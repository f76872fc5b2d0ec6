"""Strict TOML configuration loading and instance home directories.

Each component describes its configuration as frozen dataclasses; this module
turns a TOML document into them and refuses anything it does not know (a typo
in a key must not silently fall back to a default), after pyHanko's
``check_config_keys``. It is also the only module that reads ``os.environ``:
the home directory of a component instance comes from ``--home``, else from
``JPLINK_<COMPONENT>_HOME``, else ``$JPLINK_HOME/<component>``, else
``/var/lib/jplink/<component>``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigurationError

__all__ = ["from_mapping", "load_config", "load_toml", "resolve_home"]

T = TypeVar("T")

_DEFAULT_ROOT = Path("/var/lib/jplink")


def resolve_home(component: str, home: str | os.PathLike[str] | None) -> Path:
    """Find the home directory of a component instance.

    Args:
        component: e.g. ``"ca"``, ``"central"``, ``"ss"``, ``"adapter"``.
        home: an explicit directory (``--home``), which wins.

    Returns:
        The absolute path (not created).
    """
    if home is not None:
        return Path(home).expanduser().resolve()
    env = os.environ.get(f"JPLINK_{component.upper()}_HOME")
    if env:
        return Path(env).expanduser().resolve()
    root = os.environ.get("JPLINK_HOME")
    if root:
        return (Path(root).expanduser() / component).resolve()
    return _DEFAULT_ROOT / component


def load_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file.

    Raises:
        ConfigurationError: if it is missing or is not valid TOML.
    """
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigurationError(f"Configuration file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: invalid TOML: {exc}") from exc


def load_config(cls: type[T], path: Path, *, base_dir: Path | None = None) -> T:
    """Load a TOML file into the dataclass ``cls``, strictly.

    Relative ``Path`` values are resolved against ``base_dir`` (default: the
    file's directory), so a home directory can be moved as a whole.
    """
    data = load_toml(path)
    return from_mapping(cls, data, where=str(path), base_dir=base_dir or path.parent)


def from_mapping(
    cls: type[T],
    data: Mapping[str, Any],
    *,
    where: str = "configuration",
    base_dir: Path | None = None,
) -> T:
    """Build dataclass ``cls`` from a mapping, refusing unknown keys.

    Supported field types: ``str``, ``int``, ``float``, ``bool``, ``Path``,
    nested dataclasses, ``list``/``tuple`` of those, and ``X | None``.

    Raises:
        ConfigurationError: naming the key path for any unknown, missing or
            ill-typed value.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{where}: expected a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown key(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(fields))}"
        )
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in data:
            missing = field.default is dataclasses.MISSING
            if missing and field.default_factory is dataclasses.MISSING:
                raise ConfigurationError(f"{where}: missing required key {name!r}")
            default = _default_under(hints[name], field, f"{where}.{name}", base_dir)
            if default is not None:
                kwargs[name] = default
            continue
        kwargs[name] = _convert(hints[name], data[name], f"{where}.{name}", base_dir)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"{where}: {exc}") from exc


def _default_under(
    tp: Any, field: dataclasses.Field[Any], where: str, base_dir: Path | None
) -> Any:
    """A default that must also be anchored at ``base_dir``, else None.

    A relative default path (``secrets/api-key``) means "in the home
    directory", never "in whatever directory the process started in".
    """
    if base_dir is None:
        return None
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return from_mapping(tp, {}, where=where, base_dir=base_dir)
    if (
        tp is Path
        and isinstance(field.default, Path)
        and not field.default.is_absolute()
    ):
        return base_dir / field.default
    return None


def _convert(tp: Any, value: Any, where: str, base_dir: Path | None) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        errors = []
        for arg in args:
            try:
                return _convert(arg, value, where, base_dir)
            except ConfigurationError as exc:
                errors.append(str(exc))
        raise ConfigurationError("; ".join(errors))
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise ConfigurationError(f"{where}: expected a list")
        (item_tp, *_rest) = typing.get_args(tp) or (Any,)
        items = [
            _convert(item_tp, v, f"{where}[{i}]", base_dir) for i, v in enumerate(value)
        ]
        return items if origin is list else tuple(items)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return from_mapping(tp, value, where=where, base_dir=base_dir)
    if tp is Path:
        if not isinstance(value, str):
            raise ConfigurationError(f"{where}: expected a path string")
        p = Path(value).expanduser()
        if not p.is_absolute() and base_dir is not None:
            p = base_dir / p
        return p
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigurationError(f"{where}: expected true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigurationError(f"{where}: expected an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigurationError(f"{where}: expected a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigurationError(f"{where}: expected a string")
        return value
    if tp is Any:
        return value
    raise ConfigurationError(f"{where}: unsupported type {tp!r}")

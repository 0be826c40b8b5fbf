"""The machinery behind ``inpainting.engine.config``: nested dicts -> typed dataclasses, strictly.

Nothing here knows the training config's sections; it converts any nested dataclass from a dict
(as YAML gives it), checks keys and types, applies ``section.key=value`` overrides parsed with
``yaml.safe_load`` (never ``eval``) and reads YAML files, raising ``ConfigError`` with one line
that names the dotted key.

YAML aliases (``*name``, also ``<<: *name``) are refused in files and overrides alike: a config
is a few dozen values, and an alias repeats a whole subtree, so nested aliases of a few hundred
bytes stand for billions of values (the "billion laughs"). ``yaml.safe_load`` shares the
repeated objects, but every later walk (a copy, an error message, the saved ``config.yaml``)
expands them. Refusing them where YAML is read bounds every walk at once, at the cost of a
feature configs have no use for.

Type rules: an ``int`` is accepted where a ``float`` is expected; so is a string that reads as a
number, because YAML 1.1 loads ``1e-4`` (no dot) as a string. ``true``/``false`` are never
numbers. Lists are accepted for tuples.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path
from typing import Any

import yaml

from inpainting.engine.errors import UserInputError

__all__ = ["ConfigError", "apply_overrides", "build_dataclass", "check", "check_choice",
           "read_yaml"]


class ConfigError(UserInputError):
    """A configuration problem the user can fix; the message is one line naming the key.

    A ``UserInputError``, so the command line reports it as one line with exit code 2.
    """


def check(ok: bool, key: str, rule: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{key} must be {rule}, got {value!r}")


def check_choice(key: str, value: str, valid: typing.Iterable[str]) -> None:
    valid = tuple(valid)
    if value not in valid:
        raise ConfigError(f"unknown {key} {value!r} (valid: {', '.join(valid)})")


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is tuple:
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {_type_name(args[0])}"
        return f"list of {len(args)} {_type_name(args[0])}"
    return getattr(annotation, "__name__", str(annotation))


def _scalar(value: Any, kind: type, key: str) -> Any:
    def wrong() -> ConfigError:
        shown = f" {value!r}" if isinstance(value, (str, int, float, bool)) else ""
        return ConfigError(
            f"config key '{key}' expects {kind.__name__}, got {type(value).__name__}{shown}"
        )

    if isinstance(value, bool) or value is None:
        if kind is bool and value is not None:
            return value
        raise wrong()
    if kind is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise wrong() from None
        if isinstance(value, (int, float)) and math.isfinite(value):
            return float(value)
        if isinstance(value, float):  # nan, inf: of the right type, but no setting
            raise ConfigError(f"config key '{key}' expects a finite float, got {value}")
        raise wrong()
    if isinstance(value, kind):
        return value
    raise wrong()


def _convert(value: Any, annotation: Any, key: str) -> Any:
    if dataclasses.is_dataclass(annotation):
        return build_dataclass(annotation, value, key)
    if typing.get_origin(annotation) is tuple:
        args = typing.get_args(annotation)
        variadic = len(args) == 2 and args[1] is Ellipsis
        if not isinstance(value, (list, tuple)) or (not variadic and len(value) != len(args)):
            raise ConfigError(
                f"config key '{key}' expects {_type_name(annotation)}, got {value!r}"
            )
        kinds = [args[0]] * len(value) if variadic else list(args)
        return tuple(_scalar(v, kind, key) for v, kind in zip(value, kinds))
    return _scalar(value, annotation, key)


def build_dataclass(cls: type, values: Any, prefix: str = "") -> Any:
    """Instantiate the dataclass ``cls`` from a nested dict, checking keys and types.

    Raises:
        ConfigError: an unknown key (listing the valid ones) or a value of the wrong type.
    """
    where = f"config key '{prefix}'" if prefix else "the config"
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{where} expects a mapping of keys, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        if key not in names:
            dotted = f"{prefix}.{key}" if prefix else str(key)
            raise ConfigError(f"unknown key '{dotted}' (valid: {', '.join(names)})")
    kwargs = {
        name: _convert(values[name], hints[name], f"{prefix}.{name}" if prefix else name)
        for name in names
        if name in values
    }
    return cls(**kwargs)


class _AliasFound(yaml.YAMLError):
    """The YAML text holds an alias (``*anchor``), which configs do not take."""

    def __init__(self, anchor: str, line: int) -> None:
        super().__init__(f"alias *{anchor} on line {line}")
        self.anchor, self.line = anchor, line


class _NoAliasLoader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader, refusing aliases before anything is built from them."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _AliasFound(event.anchor, event.start_mark.line + 1)
        return super().compose_node(parent, index)


def _load_yaml(text: str) -> Any:
    """``yaml.safe_load(text)`` without aliases (see the module docstring).

    Raises:
        _AliasFound: the text holds an alias.
        yaml.YAMLError: the text is not valid YAML.
    """
    return yaml.load(text, Loader=_NoAliasLoader)  # a SafeLoader: plain types only


_ALIAS_FIX = "write the values out (configs take no YAML aliases)"


def _parse_override(text: str) -> tuple[list[str], Any]:
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"bad override {text!r}: use --set section.key=value")
    try:
        value = _load_yaml(raw) if raw.strip() else ""
    except _AliasFound as alias:
        raise ConfigError(f"bad override {text[:80]!r}: it uses the alias *{alias.anchor}; "
                          f"{_ALIAS_FIX}") from None
    except yaml.YAMLError:
        raise ConfigError(f"bad override {text!r}: the value is not valid YAML") from None
    return key.split("."), value


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings to a nested dict (a new dict; the input is kept).

    Args:
        values: nested config dict.
        overrides: e.g. ``["optim.lr=1e-4", "masks.hole_range=[0.1, 0.3]"]``; each value is
            parsed with ``yaml.safe_load``.

    Returns:
        The updated nested dict (not yet checked; see ``config_from_dict``).

    Raises:
        ConfigError: malformed override, or one that descends into a non-mapping value.
    """
    result = _deep_copy(values)
    for text in overrides:
        path, value = _parse_override(text)
        node = result
        for depth, part in enumerate(path[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                dotted = ".".join(path[: depth + 1])
                raise ConfigError(f"bad override {text!r}: '{dotted}' is not a section")
            node = child
        node[path[-1]] = value
    return result


def _deep_copy(values: Any) -> Any:
    if isinstance(values, dict):
        return {k: _deep_copy(v) for k, v in values.items()}
    if isinstance(values, list):
        return [_deep_copy(v) for v in values]
    return values


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a dict (an empty file gives ``{}``).

    Raises:
        ConfigError: a missing file or a folder, binary or invalid YAML, a YAML alias, or a top
            level that is not a mapping; the message names the file.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file '{path}' is a folder; pass a YAML file, "
                          "e.g. configs/demo.yaml")
    if not path.is_file():
        raise ConfigError(f"config file '{path}' does not exist")
    try:
        values = _load_yaml(path.read_text(encoding="utf-8"))
    except _AliasFound as alias:
        raise ConfigError(f"config file '{path}' uses the alias *{alias.anchor} (line "
                          f"{alias.line}); {_ALIAS_FIX}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file '{path}' is not UTF-8 text; pass a YAML file") from None
    except yaml.YAMLError as error:
        mark, problem = getattr(error, "problem_mark", None), getattr(error, "problem", None)
        where = f" (line {mark.line + 1}: {problem})" if mark is not None and problem else ""
        raise ConfigError(f"config file '{path}' is not valid YAML{where}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"config file '{path}' must hold a mapping of sections at the top")
    return values

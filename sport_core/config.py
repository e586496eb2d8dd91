"""Turning plain data (TOML/JSON tables) into attrs configs, with the key path in every error.

``structure(cls, data, path)`` checks every key of ``data`` against the fields of the attrs class ``cls``:
unknown keys are errors with a "did you mean" suggestion, values are checked against the field's type
annotation (int, float, bool, str, Literal, lists/tuples/dicts of those, optional values, nested attrs
classes), missing required fields are named, and the class's own validators run last.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any, Literal, Union

import attrs

from sport_core.errors import RecipeError, RegistryError


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(tp) if a is not Ellipsis)
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if tp is type(None):
        return "nothing (omit the key)"
    if attrs.has(tp):
        return f"a table ({tp.__name__})"
    return getattr(tp, "__name__", str(tp))


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _fail(path: str, message: str) -> RecipeError:
    return RecipeError(f"{path}: {message}" if path else message)


def convert(tp: Any, value: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and return it converted (lists to tuples, ints to floats)."""
    origin = typing.get_origin(tp)
    if tp is Any or tp is object:
        return value
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices or type(value) is not type(next(c for c in choices if c == value)):
            hint = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            raise _fail(path, f"expected {_type_name(tp)}, got {_describe(value)}{suggestion}")
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return convert(arg, value, path)
            except RecipeError as exc:
                errors.append(exc)
        raise _fail(path, f"expected {_type_name(tp)}, got {_describe(value)}")
    if origin in (list, tuple, typing.Sequence, typing.get_origin(typing.Sequence[int])):
        if not isinstance(value, (list, tuple)):
            raise _fail(path, f"expected {_type_name(tp)}, got {_describe(value)}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise _fail(path, f"expected {len(args)} items ({_type_name(tp)}), got {len(value)}")
            items = [convert(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True))]
        else:
            item_tp = args[0] if args else Any
            items = [convert(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items)
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise _fail(path, f"expected a table, got {_describe(value)}")
        args = typing.get_args(tp) or (str, Any)
        return {convert(args[0], k, f"{path}.{k}"): convert(args[1], v, f"{path}.{k}") for k, v in value.items()}
    if attrs.has(tp):
        return structure(tp, value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(path, f"expected bool (true or false), got {_describe(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(path, f"expected int, got {_describe(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(path, f"expected float, got {_describe(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _fail(path, f"expected str, got {_describe(value)}")
        return value
    if isinstance(tp, type):
        if not isinstance(value, tp):
            raise _fail(path, f"expected {_type_name(tp)}, got {_describe(value)}")
        return value
    return value


#: attrs' built-in validator messages once the quoted field name is dropped, and their natural rewrites.
_ATTRS_MESSAGES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"^must be (?P<op>[<>=!]=?) (?P<bound>.+): (?P<value>.*)$", re.S),
        r"must be \g<op> \g<bound>, got \g<value>",
    ),
    (re.compile(r"^must be in (?P<options>.+) \(got (?P<value>.*)\)$", re.S), r"must be in \g<options>, got \g<value>"),
    (
        re.compile(r"^must be (?P<type>.+) \(got (?P<value>.*) that is a (?P<cls>.+)\)\.$", re.S),
        r"must be \g<type>, got \g<value> (a \g<cls>)",
    ),
    (
        re.compile(r"^must be a subclass of (?P<type>.+) \(got (?P<value>.*)\)\.$", re.S),
        r"must be a subclass of \g<type>, got \g<value>",
    ),
    (
        re.compile(r"^must match regex (?P<pattern>.+) \((?P<value>.*) doesn't\)$", re.S),
        r"must match regex \g<pattern>, got \g<value>",
    ),
)


def _field_message(name: str, message: str) -> str:
    """``message`` (a validator's error for the field ``name``) without the field's name, worded naturally.

    attrs' built-in validators (``gt``/``ge``/``lt``/``le``, ``in_``, ``instance_of``, ``subclass_of``,
    ``matches_re``, ``max_len``/``min_len``) start with the quoted name: ``'episodes' must be > 0: -1`` becomes
    ``must be > 0, got -1``. A custom message starting with the bare name and a space (``beta must lie …``)
    loses that name. Anything else is returned unchanged.
    """
    for prefix in (f"'{name}' ", f"{name} "):
        if message.startswith(prefix):
            rest = message[len(prefix) :]
            if prefix.startswith("'"):
                for pattern, replacement in _ATTRS_MESSAGES:
                    if pattern.match(rest):
                        return pattern.sub(replacement, rest)
            return rest
    length = re.match(rf"^Length of '{re.escape(name)}' must be (?P<op>[<>]=) (?P<bound>\S+): (?P<value>.*)$", message)
    if length:
        return f"length must be {length['op']} {length['bound']}, got {length['value']}"
    return message


def _field_value(field: attrs.Attribute, kwargs: dict[str, Any]) -> Any:
    """The value ``field`` would get from ``kwargs`` (or its default), converted; ``attrs.NOTHING`` if unknown.

    Factory defaults are called (unless they take ``self``); a converter that needs the instance or the
    field makes the value unknown.
    """
    if field.init and field.name in kwargs:
        value = kwargs[field.name]
    elif isinstance(field.default, attrs.Factory):
        if field.default.takes_self:
            return attrs.NOTHING
        value = field.default.factory()
    else:
        value = field.default
        if value is attrs.NOTHING:
            return attrs.NOTHING
    converter = field.converter
    if converter is None:
        return value
    if isinstance(converter, attrs.Converter):
        if converter.takes_self or converter.takes_field:
            return attrs.NOTHING
        converter = converter.converter
    return converter(value)


def _failing_field(cls: type, kwargs: dict[str, Any]) -> tuple[str, str] | None:
    """(field name, message) of the first field of ``cls``, in field order, whose converter or validator
    rejects its value in ``kwargs`` (or its default) with ValueError/TypeError; ``None`` if none does.

    Validators are called with the instance ``None``; one that needs the instance (it raises
    AttributeError, or anything but ValueError/TypeError) is skipped, as is a field whose value is unknown.
    """
    for field in attrs.fields(cls):
        try:
            value = _field_value(field, kwargs)
            if value is attrs.NOTHING or field.validator is None:
                continue
            field.validator(None, field, value)
        except (ValueError, TypeError) as exc:
            return field.name, _field_message(field.name, str(exc.args[0]) if exc.args else str(exc))
        except Exception:  # a validator that needs the instance (or a crashing converter): not this field
            continue
    return None


def structure(cls: type, data: Any, path: str = "") -> Any:
    """Build the attrs instance ``cls`` from the table ``data``; errors name ``path`` + the key.

    Raises RecipeError for: ``data`` not a table; an unknown key (``path.key: unknown key; did you mean …``);
    a value not matching the field's annotation (``path.key: expected …``); missing required keys
    (``path: missing required key…``). When building the instance raises ValueError/TypeError, the fields'
    converters and validators are re-run one by one in field order on the given values (or defaults): the
    first that fails gives ``path.field: message``, the message without the field's name (``'episodes' must be
    > 0: -1`` → ``must be > 0, got -1``; ``beta must lie …`` → ``must lie …``). If no single field fails (a
    cross-field check in ``__attrs_post_init__``), the error stays on the table: ``path: message``.
    """
    if not isinstance(data, dict):
        raise _fail(path, f"expected a table ({cls.__name__}), got {_describe(data)}")
    fields = {f.name: f for f in attrs.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        sub = f"{path}.{key}" if path else key
        if key not in fields:
            hint = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
            suggestion = f"; did you mean {hint[0]}?" if hint else ""
            allowed = ", ".join(fields) or "none"
            raise _fail(sub, f"unknown key{suggestion} (allowed keys: {allowed})")
        kwargs[key] = convert(hints.get(key, Any), value, sub)
    missing = [n for n, f in fields.items() if f.default is attrs.NOTHING and n not in kwargs]
    if missing:
        raise _fail(path, f"missing required key{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        failing = _failing_field(cls, kwargs)
        if failing is None:
            raise _fail(path, str(exc)) from exc
        name, message = failing
        raise _fail(f"{path}.{name}" if path else name, message) from exc


COMPONENT_KEY = "sport_component"


def component_field(kind: str, default: str, config_field: str | None = None) -> Any:
    """An attrs field holding the name of a registered component of ``kind``.

    Recipe validation (``sport check`` included) then checks the name against the registry, and, when
    ``config_field`` names a sibling dict field, that dict against the component's own config class.
    """
    return attrs.field(default=default, metadata={COMPONENT_KEY: (kind, config_field)})


def configured_component(config: Any, field: str, registry: Any, stage: str) -> tuple[Any, Any]:
    """(component, its structured config) for the :func:`component_field` ``field`` of a stage config.

    The component is looked up in ``registry`` under the field's kind, and its companion config dict is
    structured into the component's config class; errors name the key path (``stages.<stage>.config.…``).
    """
    kind, config_field = attrs.fields_dict(type(config))[field].metadata[COMPONENT_KEY]
    try:
        component = registry.get(kind, getattr(config, field))
    except RegistryError as exc:
        raise RecipeError(f"stages.{stage}.config.{field}: {exc}") from exc
    table = dict(getattr(config, config_field)) if config_field else {}
    return component, structure(component.config_cls, table, f"stages.{stage}.config.{config_field}")


def unstructure(config: Any) -> dict:
    """The plain-data (TOML/JSON-ready) form of an attrs config; ``None`` values are left out."""

    def _filter(attribute: attrs.Attribute, value: Any) -> bool:
        return value is not None

    return attrs.asdict(config, filter=_filter, value_serializer=_plain)


def _plain(_inst: Any, _field: Any, value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value

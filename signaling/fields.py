"""FieldParser: builds a wire dataclass from a JSON object by its annotated fields (the one parser).

Every client message and join request is a frozen dataclass whose fields say what they accept, e.g.
``track_id: Annotated[str, Text(MAX_ID_LENGTH)]`` or ``width: Annotated[int, Range(0, 16_384)]``; one loop
over the fields validates a payload, so a new event is a dataclass and a line in a table, not a parser.
What a field may be: ``str`` (with ``Text``, optionally ``Pattern``), ``int`` (with ``Range``), ``bool``, a
``StrEnum``, a ``Literal`` of strings, ``dict[str, <StrEnum>]`` (with ``Items``), each optionally ``| None``
(missing or null: None). Limits known only at run time (the chat length) are named in ``Text.limit`` and
passed to ``parse`` by the caller.
"""

from __future__ import annotations

import dataclasses
import re
import types
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from signaling.errors import ErrorCode, ProtocolError

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class Text:
    """A string of at most ``max_length`` characters (or the run-time limit named ``limit``), not blank
    unless ``allow_empty``; over a run-time limit the error is ``too_long`` (the chat tells the user)."""

    max_length: int = 0
    allow_empty: bool = False
    limit: str | None = None
    too_long: str | None = None  # the message for ErrorCode.TOO_LONG, with {limit}


@dataclasses.dataclass(frozen=True, slots=True)
class Pattern:
    regex: re.Pattern[str]
    message: str


@dataclasses.dataclass(frozen=True, slots=True)
class Range:
    low: int
    high: int


@dataclasses.dataclass(frozen=True, slots=True)
class Items:
    """A JSON object of at most ``max_items`` entries (keys: ``key`` text; values: the dict's value type)."""

    max_items: int
    key: Text
    message: str


def bad(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_PAYLOAD, message)


def as_object(data: object) -> Mapping[str, object]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise bad("the payload must be an object")
    return data


@dataclasses.dataclass(frozen=True, slots=True)
class _Field:
    name: str
    kind: Any  # the type without Annotated and None
    optional: bool
    meta: tuple[Any, ...]


class FieldParser:
    """The fields of one dataclass, read once from its annotations; ``parse`` builds an instance."""

    def __init__(self, cls: type[T]) -> None:
        hints = get_type_hints(cls, include_extras=True)
        self.cls = cls
        self.fields = tuple(_field(f.name, hints[f.name]) for f in dataclasses.fields(cls))  # type: ignore[arg-type]
        for field in self.fields:  # at import: a field this parser cannot read fails every test, not a client
            _check(cls, field)

    def parse(self, data: Mapping[str, object], limits: Mapping[str, int]) -> Any:
        return self.cls(*(_value(f, data, limits) for f in self.fields))


def _field(name: str, hint: Any) -> _Field:
    meta: tuple[Any, ...] = ()
    if get_origin(hint) is Annotated:
        hint, *rest = get_args(hint)
        meta = tuple(rest)
    optional = False
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        optional = len(args) < len(get_args(hint))
        if len(args) != 1:
            raise TypeError(f"{name}: one type or one type | None")
        hint = args[0]
    return _Field(name, hint, optional, meta)


def _check(cls: type, field: _Field) -> None:
    kind = field.kind
    if kind is int and _meta(field, Range) is None:
        raise TypeError(f"{cls.__name__}.{field.name}: an int field needs a Range")
    if kind is str and _meta(field, Text) is None:
        raise TypeError(f"{cls.__name__}.{field.name}: a str field needs a Text")
    if get_origin(kind) is dict and _meta(field, Items) is None:
        raise TypeError(f"{cls.__name__}.{field.name}: a dict field needs Items")
    known = kind in (str, bool, int) or get_origin(kind) in (Literal, dict)
    if not known and not (isinstance(kind, type) and issubclass(kind, StrEnum)):
        raise TypeError(f"{cls.__name__}.{field.name}: {kind!r} is not a wire field type")


def _meta(field: _Field, kind: type[T]) -> T | None:
    return next((m for m in field.meta if isinstance(m, kind)), None)


def _value(field: _Field, data: Mapping[str, object], limits: Mapping[str, int]) -> object:
    name, kind, value = field.name, field.kind, data.get(field.name)
    if field.optional and value is None:
        return None
    if kind is str:
        text = _meta(field, Text)
        assert text is not None  # _check
        return _text(name, value, text, _meta(field, Pattern), limits)
    if kind is bool:
        if not isinstance(value, bool):
            raise bad(f"{name!r} must be true or false")
        return value
    if kind is int:
        span = _meta(field, Range)
        assert span is not None  # _check
        if not isinstance(value, int) or isinstance(value, bool) or not span.low <= value <= span.high:
            raise bad(f"{name!r} must be an integer from {span.low} to {span.high}")
        return value
    if isinstance(kind, type) and issubclass(kind, StrEnum):
        return _enum(name, value, kind)
    if get_origin(kind) is Literal:
        choices = get_args(kind)
        if value not in choices:
            raise bad(f"{name!r} must be {' or '.join(map(str, choices))}")
        return value
    if get_origin(kind) is dict:
        items = _meta(field, Items)
        assert items is not None  # _check
        values = get_args(kind)[1]
        if not isinstance(value, dict) or len(value) > items.max_items:
            raise bad(items.message)
        return {
            _text(name, key, items.key, None, limits): _enum(name, item, values)
            for key, item in value.items()
        }
    raise TypeError(f"{name}: {kind!r} is not a wire field type")


def _text(name: str, value: object, text: Text, pattern: Pattern | None, limits: Mapping[str, int]) -> str:
    if not isinstance(value, str):
        raise (bad(pattern.message) if pattern else bad(f"{name!r} must be a string"))
    limit = limits[text.limit] if text.limit else text.max_length
    if len(value) > limit:
        if text.too_long:
            raise ProtocolError(ErrorCode.TOO_LONG, text.too_long.format(limit=limit))
        raise bad(pattern.message if pattern else f"{name!r} is longer than {limit} characters")
    if not text.allow_empty and not value.strip():
        raise bad(f"{name!r} must not be empty")
    if pattern is not None and not pattern.regex.fullmatch(value):
        raise bad(pattern.message)
    return value


E = TypeVar("E", bound=StrEnum)


def _enum(name: str, value: object, enum: type[E]) -> E:
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return enum(value)
    except ValueError:
        choices = ", ".join(m.value for m in enum)
        raise bad(f"{name!r} must be one of: {choices}") from None

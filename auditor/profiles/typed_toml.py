"""Reading TOML tables into typed dataclasses, and the JSON Schema of the same declarations.

A profile's format is declared once, as dataclasses whose fields carry their types (and,
through ``typing.Annotated``, their constraints). ``parse`` checks parsed TOML against that
declaration and says exactly which key is wrong and what was expected; ``json_schema`` turns
the same declaration into the published JSON Schema. One declaration feeds both, so the
schema cannot say something the loader does not enforce, or the other way round.

Supported field types: str, int, float (any TOML number), bool, datetime.date, Literal[...],
tuple[T, ...] (a TOML array), dict[K, V] (a table with free keys), nested dataclasses (tables
with fixed keys), Optional[T] (the key may be left out), and Annotated[T, ...] carrying
``Constraint``s and ``ONE_OR_MANY`` (a tuple field that also accepts a single value).
A field named ``min_count`` is the key ``min-count``.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Optional


class FormatError(ValueError):
    """A value that does not fit its declaration, said as "<dotted key>: <what was expected>"."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")


@dataclass(frozen=True, eq=False)  # hashed by identity: Annotated metadata must be hashable
class Constraint:
    """A rule beyond the type: ``problem(value)`` returns None when the value is fine, else why
    it is not; ``schema`` holds the JSON Schema keywords that say the same, where they can."""

    expected: str  # completes "expected ...": 'a PEP 440 specifier set such as ">=3.10"'
    problem: Callable[[Any], Optional[str]]
    schema: dict[str, Any] = field(default_factory=dict)


ONE_OR_MANY = object()  # marks a tuple field that also takes a single value: dtype = "float32"


def _toml_key(name: str) -> str:
    return name.replace("_", "-")


def _describe(tp: Any) -> str:
    """What a value of this type is, for 'expected ...': 'a string', 'one of "a", "b"'..."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        constraints = [m for m in tp.__metadata__ if isinstance(m, Constraint)]
        if constraints:
            return constraints[0].expected
        inner = _describe(args[0])
        return f"{inner}, or {_describe(typing.get_args(args[0])[0])}" if ONE_OR_MANY in tp.__metadata__ else inner
    if origin in (typing.Union, types.UnionType):
        return _describe(_non_null(args))
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(a) for a in args)
    if origin is tuple:
        return f"an array of {_plural(_describe(args[0]))}"
    if origin is dict:
        return "a table"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return _SCALAR_NAMES[tp]


_SCALAR_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
                 datetime.date: "a date such as 2027-06-30"}


def _plural(phrase: str) -> str:
    """'a string' -> 'strings'; anything longer -> 'items each <phrase>'."""
    plurals = {"a string": "strings", "an integer": "integers", "a number": "numbers", "a boolean": "booleans",
               "a table": "tables"}
    return plurals.get(phrase, f"items each {phrase}")


def _kind_of(value: Any) -> str:
    """The TOML type of a parsed value, with its article."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, datetime.datetime):
        return "a date-time"
    if isinstance(value, datetime.time):
        return "a time"
    for kind, name in ((int, "an integer"), (float, "a float"), (str, "a string"), (list, "an array"),
                       (dict, "a table"), (datetime.date, "a date")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _show(value: Any) -> str:
    return json.dumps(value, default=str)


def _non_null(args: tuple) -> Any:
    (inner,) = [a for a in args if a is not type(None)]
    return inner


# --- parsing ---------------------------------------------------------------------------


def parse(cls: type, data: Any, key: str = "") -> Any:
    """Build ``cls`` from a parsed TOML table, or raise FormatError naming the key."""
    if not isinstance(data, dict):
        raise FormatError(key or "(document)", f"expected a table, got {_kind_of(data)}")
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {_toml_key(f.name): f for f in dataclasses.fields(cls)}
    for name in data:
        if name not in fields:
            close = difflib.get_close_matches(name, list(fields), n=1)
            raise FormatError(_join(key, name), "unknown key; expected one of " + ", ".join(fields)
                              + (f" (did you mean {close[0]}?)" if close else ""))
    values = {}
    for name, f in fields.items():
        if name in data:
            values[f.name] = _value(hints[f.name], data[name], _join(key, name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise FormatError(_join(key, name), f"expected {_describe(hints[f.name])}, but the key is missing")
    return cls(**values)


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _value(tp: Any, value: Any, key: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        inner, metadata = args[0], tp.__metadata__
        if ONE_OR_MANY in metadata and not isinstance(value, list):
            parsed = (_value(typing.get_args(inner)[0], value, key),)
        else:
            parsed = _value(inner, value, key)
        for constraint in (m for m in metadata if isinstance(m, Constraint)):
            problem = constraint.problem(parsed)
            if problem is not None:
                raise FormatError(key, f"expected {constraint.expected}, got {_show(value)}"
                                  + (f" ({problem})" if problem else ""))
        return parsed
    if origin in (typing.Union, types.UnionType):
        return _value(_non_null(args), value, key)
    if origin is Literal:
        if value not in args:
            raise FormatError(key, f"expected {_describe(tp)}, got {_show(value)}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise FormatError(key, f"expected {_describe(tp)}, got {_kind_of(value)}: {_show(value)}")
        return tuple(_value(args[0], item, f"{key}[{index}]") for index, item in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise FormatError(key, f"expected a table, got {_kind_of(value)}: {_show(value)}")
        return {_value(args[0], name, _join(key, name)): _value(args[1], item, _join(key, name))
                for name, item in value.items()}
    if dataclasses.is_dataclass(tp):
        return parse(tp, value, key)
    if not _is_a(value, tp):
        raise FormatError(key, f"expected {_describe(tp)}, got {_kind_of(value)}: {_show(value)}")
    return float(value) if tp is float else value


def _is_a(value: Any, tp: type) -> bool:
    if isinstance(value, bool):
        return tp is bool
    if tp is float:
        return isinstance(value, (int, float))
    if tp is datetime.date:
        return type(value) is datetime.date  # a date-time is not a date
    return isinstance(value, tp)


# --- JSON Schema -------------------------------------------------------------------------


def json_schema(cls: type) -> dict[str, Any]:
    """The JSON Schema (2020-12) of a table declared by ``cls``, its nested tables in $defs."""
    defs: dict[str, Any] = {}
    top = _table_schema(cls, defs)
    return {**top, "$defs": dict(sorted(defs.items()))} if defs else top


def _schema(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        inner, metadata = args[0], tp.__metadata__
        schema = _schema(inner, defs)
        for constraint in (m for m in metadata if isinstance(m, Constraint)):
            schema.update(constraint.schema)
            schema.setdefault("description", f"{constraint.expected[0].upper()}{constraint.expected[1:]}.")
        if ONE_OR_MANY in metadata:
            return {"anyOf": [schema["items"], schema]}
        return schema
    if origin in (typing.Union, types.UnionType):
        return _schema(_non_null(args), defs)
    if origin is Literal:
        return {"enum": list(args)}
    if origin is tuple:
        return {"type": "array", "items": _schema(args[0], defs)}
    if origin is dict:
        return {"type": "object", "propertyNames": _schema(args[0], defs), "additionalProperties": _schema(args[1], defs)}
    if dataclasses.is_dataclass(tp):
        if tp.__name__ not in defs:
            defs[tp.__name__] = {}  # reserve the name first: tables may refer to each other
            defs[tp.__name__] = _table_schema(tp, defs)
        return {"$ref": f"#/$defs/{tp.__name__}"}
    return dict(_SCALAR_SCHEMAS[tp])


_SCALAR_SCHEMAS = {str: {"type": "string"}, int: {"type": "integer"}, float: {"type": "number"},
                   bool: {"type": "boolean"}, datetime.date: {"type": "string", "format": "date"}}


def _table_schema(cls: type, defs: dict[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls, include_extras=True)
    properties, required = {}, []
    for f in dataclasses.fields(cls):
        schema = _schema(hints[f.name], defs)
        if f.metadata.get("doc"):
            schema = {**schema, "description": f.metadata["doc"]}
        properties[_toml_key(f.name)] = schema
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(_toml_key(f.name))
    schema: dict[str, Any] = {"type": "object"}
    if cls.__doc__:
        schema["description"] = " ".join(cls.__doc__.split())
    schema.update(properties=properties, additionalProperties=False)
    if required:
        schema["required"] = required
    return schema

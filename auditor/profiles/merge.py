"""`extends`: laying one profile document over another.

Tables (python, machine, accelerator) merge key by key, the later document's keys winning;
requirement entries are kept in order, a later entry with the same id replacing the earlier
one in place; check ignores add up, severity overrides merge key by key; a later waiver for
the same code replaces the earlier one.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, TypeVar

from auditor.profiles.document import CheckPolicy, ProfileDocument

Table = TypeVar("Table")


def merge(base: ProfileDocument, layer: ProfileDocument) -> ProfileDocument:
    return ProfileDocument(
        schema=layer.schema,
        description=layer.description,
        name=layer.name,
        python=_merge_table(base.python, layer.python),
        machine=_merge_table(base.machine, layer.machine),
        accelerator=_merge_table(base.accelerator, layer.accelerator),
        frameworks=_merge_entries(base.frameworks, layer.frameworks),
        compute=_merge_entries(base.compute, layer.compute),
        exports=_merge_entries(base.exports, layer.exports),
        checks=_merge_checks(base.checks, layer.checks),
        waivers=tuple({waiver.code.upper(): waiver for waiver in (*base.waivers, *layer.waivers)}.values()),
    )


def _merge_table(base: Optional[Table], layer: Optional[Table]) -> Optional[Table]:
    if base is None or layer is None:
        return layer if base is None else base
    given = {f.name: getattr(layer, f.name) for f in dataclasses.fields(layer) if getattr(layer, f.name) is not None}
    return dataclasses.replace(base, **given)


def _merge_entries(base: tuple, layer: tuple) -> tuple:
    entries = {entry.requirement_id(): entry for entry in base}
    entries.update((entry.requirement_id(), entry) for entry in layer)
    return tuple(entries.values())


def _merge_checks(base: Optional[CheckPolicy], layer: Optional[CheckPolicy]) -> Optional[CheckPolicy]:
    if base is None or layer is None:
        return layer if base is None else base
    return CheckPolicy(ignore=tuple(dict.fromkeys((*base.ignore, *layer.ignore))),
                       severity={**base.severity, **layer.severity})

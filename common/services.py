"""Generic writes any app's services may use (imports no app)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from django.db import models

M = TypeVar("M", bound=models.Model)


def model_update(
    *, instance: M, fields: Iterable[str], data: dict, clean_exclude: Iterable[str] = ()
) -> tuple[M, bool]:
    """Set each of `fields` that `data` holds and whose value differs; if any did, validate
    with `full_clean()` (leaving out `clean_exclude`) and save those fields, plus
    `updated_at` when the model has one. Returns the instance and whether it changed.

    The HackSoft Django Styleguide's `model_update`: a field absent from `data` is left as
    it is, and nothing is written when nothing changed.
    """
    changed = [name for name in fields if name in data and getattr(instance, name) != data[name]]
    if not changed:
        return instance, False
    for name in changed:
        setattr(instance, name, data[name])
    instance.full_clean(exclude=list(clean_exclude) or None)
    if any(f.name == "updated_at" for f in instance._meta.concrete_fields):
        changed.append("updated_at")  # auto_now fields are set by save(update_fields=...)
    instance.save(update_fields=changed)
    return instance, True

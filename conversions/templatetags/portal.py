"""Small formatting filters for report values on the run and dataset pages."""

from __future__ import annotations

import json
from typing import Any

from django import forms, template

from conversions.engine.report import html_tables

register = template.Library()


@register.filter
def humanize_key(key: str) -> str:
    return str(key).replace("_", " ")


@register.filter
def kv_value(value: Any) -> str:
    if isinstance(value, dict):
        return json.dumps(value, default=str)[:400]
    return html_tables.value_text(value)


@register.filter
def sorted_counts(counts: dict[str, int] | None) -> list[tuple[str, int]]:
    return sorted((counts or {}).items(), key=lambda kv: (-kv[1], kv[0]))


@register.filter
def is_single_checkbox(bound_field) -> bool:
    return isinstance(bound_field.field.widget, forms.CheckboxInput)


register.filter("shrink", html_tables.shrink)
register.filter("ms", html_tables.ms)
register.filter("threads_label", html_tables.threads_label)
register.filter("pct", html_tables.pct)


@register.filter
def get(mapping: dict | None, key: str) -> Any:
    return (mapping or {}).get(key)


@register.filter
def shown_to(text: Any, user: Any) -> str:
    """``{{ value|shown_to:user }}``: absolute server paths hidden from non-staff users."""
    from conversions.media import shown_to as _shown_to

    return _shown_to(user, "" if text is None else text)


@register.filter
def may_change(obj: Any, user: Any) -> bool:
    """``{% if run|may_change:user %}``: whether ``user`` may cancel, re-run, detect again or delete ``obj``."""
    from conversions.permissions import can_change

    return can_change(user, obj)

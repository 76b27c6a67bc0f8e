"""Small formatting filters for report values on the run and dataset pages."""

from __future__ import annotations

import json
from typing import Any

from django import forms, template

register = template.Library()


@register.filter
def humanize_key(key: str) -> str:
    return str(key).replace("_", " ")


@register.filter
def kv_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        if len(value) > 12:
            return ", ".join(str(v) for v in value[:12]) + f", … ({len(value)} in all)"
        return ", ".join(str(v) for v in value) or "—"
    if isinstance(value, dict):
        return json.dumps(value, default=str)[:400]
    return str(value)


@register.filter
def sorted_counts(counts: dict[str, int] | None) -> list[tuple[str, int]]:
    return sorted((counts or {}).items(), key=lambda kv: (-kv[1], kv[0]))


@register.filter
def is_single_checkbox(bound_field) -> bool:
    return isinstance(bound_field.field.widget, forms.CheckboxInput)


@register.filter
def shrink(ratio: float | None) -> str:
    """The report's size ratio (variant size / float32 size) as ``3.5× smaller`` (or ``1.3× larger``)."""
    if not ratio:
        return "—"
    if 0.95 < ratio < 1.05:
        return "same"
    return f"{1 / ratio:.1f}× smaller" if ratio < 1 else f"{ratio:.1f}× larger"


@register.filter
def ms(value: float | None) -> str:
    """A latency in milliseconds with as many decimals as a small number needs: 0.024, 1.87, 41.3."""
    if not isinstance(value, (int, float)):
        return "—"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 10 else f"{value:.1f}"


@register.filter
def threads_label(threads: str) -> str:
    return f"{threads} thread{'' if str(threads) == '1' else 's'}"


@register.filter
def get(mapping: dict | None, key: str) -> Any:
    return (mapping or {}).get(key)


@register.filter
def pct(value: float | None) -> str:
    """A percentage, dB or mAP figure with one decimal; a dash when it was not measured (or is not a number)."""
    return f"{value:.1f}" if isinstance(value, (int, float)) else "—"


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

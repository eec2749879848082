"""A target's rule: the condition (rule language, see docs/rules.md) an activity must meet."""

from __future__ import annotations

from rules import RuleError, validate_rule

from .errors import About


def resolve_rule(rule: str | None, entity: str, about: About) -> str:
    """The rule, stripped; refused (with the language's message) if it does not compile for
    activities tracked on `entity`."""
    rule = (rule or "").strip()
    if rule:
        try:
            validate_rule(rule, purpose="target", entity=entity)
        except RuleError as exc:
            about.add(f"rule {exc}", target_field="rule")
    return rule

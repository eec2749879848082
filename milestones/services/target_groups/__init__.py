"""Milestones (target groups): their configuration rules and writes, in one place for the
admin screens and the API.

- `validation/`: the rules, split by concern (the milestone's details, cycles, targets with
  their scope, rule and sub-targets); one `ValidationError` names every refused field.
- `writes`: `target_group_create`, `target_group_update`, `target_group_set_active`.
- `templates`: `target_group_clone`, `template_create_from_group` (they use the writes).
- `shape`: the API's data shape of a milestone (`target_group_as_data`), and a template's
  payload merged with a request (`apply_template`).
- `audit`: the configuration's audit trail.

The KPI catalogue and the limits (MAX_TARGETS, ...) are in `milestones.catalogue`.
"""

from ...catalogue import (
    BACKDATE_MONTHS,
    CUSTOMER_EVENTS,
    KPI_ENTITIES,
    LOCKED_WHEN_LIVE,
    MAX_CYCLES,
    MAX_TARGETS,
    PERCENTAGE_KPIS,
    REPROCESS_FIELDS,
)
from ...selectors import sole_till_code
from .audit import audit
from .shape import (
    apply_template,
    cycle_as_data,
    scope_as_data,
    target_group_as_data,
)
from .templates import target_group_clone, template_create_from_group
from .validation import (
    TARGET_FIELD_CODE,
    TILL_REQUIRED,
    Errors,
    PeriodSpec,
    milestones_achieved_source_problems,
)
from .writes import target_group_create, target_group_set_active, target_group_update

__all__ = [
    "BACKDATE_MONTHS",
    "CUSTOMER_EVENTS",
    "KPI_ENTITIES",
    "LOCKED_WHEN_LIVE",
    "MAX_CYCLES",
    "MAX_TARGETS",
    "PERCENTAGE_KPIS",
    "REPROCESS_FIELDS",
    "TARGET_FIELD_CODE",
    "TILL_REQUIRED",
    "Errors",
    "PeriodSpec",
    "apply_template",
    "audit",
    "cycle_as_data",
    "milestones_achieved_source_problems",
    "scope_as_data",
    "sole_till_code",
    "target_group_as_data",
    "target_group_clone",
    "target_group_create",
    "target_group_set_active",
    "target_group_update",
    "template_create_from_group",
]

"""The configuration rules of a milestone, checked alike for the admin screens and the API.

`validate_create` / `validate_update` take the API's shape as plain Python values (dates as
`date`, amounts as `Decimal`) and either answer what to write or raise one
`ValidationError` whose dict names each refused field with a message meant for people.
Split by concern: the milestone's own fields (`details`), its `cycles`, each of its
`targets` with their `scope`, `rule` and `sub_targets`.
"""

from .create import NewMilestone, validate_create
from .cycles import PeriodSpec
from .details import TILL_REQUIRED
from .errors import TARGET_FIELD_CODE, Errors
from .targets import milestones_achieved_source_problems
from .update import MilestoneEdit, validate_update

__all__ = [
    "TARGET_FIELD_CODE",
    "TILL_REQUIRED",
    "Errors",
    "MilestoneEdit",
    "NewMilestone",
    "PeriodSpec",
    "milestones_achieved_source_problems",
    "validate_create",
    "validate_update",
]

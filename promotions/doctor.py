"""The condition doctor: what a promotion's condition will do with the organisation's award
switch and the milestones it names, found when it is saved.

Warnings never block a save (errors — a syntax error, an unknown profile — still do, in
`Promotion.clean`). Each has a stable `code` and a message a configurer can act on:

| code | when |
|---|---|
| `strict_greater` | `targetAchieved("T") > targetDefined("T")`: false when the target is reached exactly, so the achievement event pays nothing (suggest `>=`) |
| `never_achieved_event` | `isTargetAchievedEvent == true` while the award switch is Inactive: no achievement event is ever sent, so it never pays |
| `pays_twice` | no `isTargetAchievedEvent` clause while the switch is Active: the achievement event and the cycle-end event both make it true (the reference's documented double award) |
| `unknown_target` | a named target or milestone that exists in no live or upcoming milestone |
| `unknown_sub_target` | `targetMilestoneTrigger.contains("S")` where no named target has a sub-target S |

`condition_check` gives both what a save would refuse (each error with its position in the
condition, for the screens to mark) and these warnings: the promotion form runs it while the
configurer types.

The checks read the condition's text after it has compiled (the names are the literals the
compiler found); they are about meaning, not syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Q

from milestones.models import SubTarget, Target, TargetGroup
from milestones.selectors import org_today
from rules import RuleError, compile_rule

from .models import Promotion, PromotionActivity

_NAME = r'"((?:[^"\\]|\\.)*)"'
_EV = r"(?:currentEvent\s*\.\s*)?"
STRICT = [
    re.compile(rf"{_EV}targetAchieved\(\s*{_NAME}\s*\)\s*>(?!=)\s*{_EV}targetDefined\(\s*{_NAME}\s*\)"),
    re.compile(rf"{_EV}targetDefined\(\s*{_NAME}\s*\)\s*<(?!=)\s*{_EV}targetAchieved\(\s*{_NAME}\s*\)"),
]  # fmt: skip
ACHIEVED_EVENT = re.compile(r"isTargetAchievedEvent")
ACHIEVED_EVENT_TRUE = re.compile(
    r"isTargetAchievedEvent\s*==\s*true|true\s*==\s*[\w.]*isTargetAchievedEvent"
    r"|isTargetAchievedEvent\s*(?=$|&&|\|\||\))"
)
TRIGGER = re.compile(rf"targetMilestoneTrigger\s*\.\s*contains\(\s*{_NAME}\s*\)")


@dataclass(frozen=True)
class Warning:
    code: str
    message: str

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


class ConditionDoctor:
    """The checks for one organisation, with the award switch given (`switch`; default the
    organisation's own). What they read from the database — the names of the live and upcoming
    milestones, the sub-targets of a set of names — is read once per doctor, so a list of
    promotions costs a fixed number of queries, not a few per row."""

    def __init__(self, organisation, *, switch: bool | None = None):
        self.organisation = organisation
        self.switch = organisation.award_when_target_achieved if switch is None else switch
        self._current: set[str] | None = None
        self._subs: dict[frozenset, set[str]] = {}

    def warnings(
        self, condition: str, activity: str = PromotionActivity.TARGET_PERIOD_ELAPSED
    ) -> list[Warning]:
        """What the condition will do; [] when it does not compile (the save refuses it)."""
        try:
            rule = compile_rule(condition, purpose="promotion")
        except RuleError:
            return []
        text = condition
        out: list[Warning] = []
        for pattern in STRICT:
            for m in pattern.finditer(text):
                if m.group(1) == m.group(2):
                    out.append(Warning("strict_greater", (
                        f'"{m.group(0)}" is false when "{m.group(1)}" is reached exactly, so '
                        "the achievement pays nothing; write >= to pay at the target."
                    )))  # fmt: skip
        hears_cycle = activity == PromotionActivity.TARGET_PERIOD_ELAPSED
        if not self.switch and ACHIEVED_EVENT_TRUE.search(text):
            out.append(Warning("never_achieved_event", (
                "isTargetAchievedEvent == true never holds: ENABLE_AWARD_WHEN_TARGET_ACHIEVED is "
                "Inactive, so only the cycle-end event is sent and this promotion never pays. "
                "Remove the clause (or write == false) to pay at the cycle end."
            )))  # fmt: skip
        if self.switch and hears_cycle and not ACHIEVED_EVENT.search(text):
            out.append(Warning("pays_twice", (
                "ENABLE_AWARD_WHEN_TARGET_ACHIEVED is Active and the condition has no "
                "isTargetAchievedEvent clause: it can pay at the achievement and again at the "
                "cycle end. Add isTargetAchievedEvent == true (at once) or == false (at the "
                "cycle end)."
            )))  # fmt: skip
        names = frozenset(rule.target_names)
        for name in sorted(names - self.current_names()):
            out.append(Warning("unknown_target", (
                f'"{name}" is not a target or milestone of any live or upcoming milestone: '
                "this part of the condition matches nothing."
            )))  # fmt: skip
        wanted_subs = [m.group(1) for m in TRIGGER.finditer(text)]
        if wanted_subs:
            have = self.sub_target_names(names)
            where = "the targets it names" if names else "any target"
            for sub in wanted_subs:
                if sub not in have:
                    out.append(Warning("unknown_sub_target", (
                        f'No sub-target "{sub}" in {where}: '
                        f'targetMilestoneTrigger.contains("{sub}") is never true.'
                    )))  # fmt: skip
        return out

    def current_names(self) -> set[str]:
        """Target and milestone names of the organisation's live and upcoming milestones."""
        if self._current is None:
            today = org_today(self.organisation)
            groups = TargetGroup.objects.filter(
                organisation_id=self.organisation.id, end__gte=today
            )
            names = set(groups.values_list("name", flat=True))
            names |= set(
                Target.objects.filter(target_group__in=groups).values_list("name", flat=True)
            )
            self._current = names
        return self._current

    def sub_target_names(self, names: frozenset) -> set[str]:
        """Sub-target names of the targets `names` names (by target or milestone), or of
        every target when it names none."""
        if names not in self._subs:
            subs = SubTarget.objects.filter(target__organisation_id=self.organisation.id)
            if names:
                subs = subs.filter(
                    Q(target__name__in=names) | Q(target__target_group__name__in=names)
                )
            self._subs[names] = set(subs.values_list("name", flat=True))
        return self._subs[names]


@dataclass(frozen=True)
class Problem:
    """What a save refuses in a condition; `position` (0-based, in the condition's text) when
    the rule language knows it."""

    message: str
    position: int | None = None


_AT_POSITION = re.compile(r"^(?P<message>.*) \(at position (?P<position>\d+)\)$", re.DOTALL)


def condition_problems(messages) -> list[Problem]:
    """The condition's error messages (as a save gives them: `RuleError`'s "... (at position
    N)") with their positions apart."""
    out = []
    for text in messages:
        m = _AT_POSITION.match(str(text))
        if m:
            out.append(Problem(m.group("message"), int(m.group("position"))))
        else:
            out.append(Problem(str(text)))
    return out


@dataclass(frozen=True)
class ConditionCheck:
    problems: list[Problem]
    warnings: list[Warning]

    @property
    def valid(self) -> bool:
        return not self.problems


def condition_check(
    *,
    organisation,
    condition: str,
    activity: str = PromotionActivity.TARGET_PERIOD_ELAPSED,
    doctor: ConditionDoctor | None = None,
) -> ConditionCheck:
    """What a save would say of `condition` (the rules of `Promotion.clean`: the syntax and
    the names of the organisation's targets) and, when it is valid, the doctor's warnings.
    `organisation` None (an operations account adding a promotion): the syntax only."""
    promotion = Promotion(organisation=organisation, condition=condition)
    try:
        promotion.clean()
    except ValidationError as exc:
        messages = exc.message_dict.get("condition", []) if hasattr(exc, "error_dict") else []
        if messages:
            return ConditionCheck(condition_problems(messages), [])
    if organisation is None:
        return ConditionCheck([], [])
    doctor = doctor or ConditionDoctor(organisation)
    return ConditionCheck([], doctor.warnings(condition, activity))


def condition_warnings(
    *, organisation, condition: str, activity: str = PromotionActivity.TARGET_PERIOD_ELAPSED
) -> list[Warning]:
    """What one condition will do (a doctor for one question)."""
    return ConditionDoctor(organisation).warnings(condition, activity)


def switch_change_affects(*, organisation, new_value: bool) -> list[dict]:
    """The active promotions on target events whose meaning changes when the award switch
    becomes `new_value`: every 'target period elapsed' promotion not yet ended (immediate
    events reach it or stop reaching it), each with what the doctor will then say."""
    from .models import Promotion

    if bool(organisation.award_when_target_achieved) == bool(new_value):
        return []
    doctor = ConditionDoctor(organisation, switch=bool(new_value))
    qs = Promotion.objects.filter(
        organisation_id=organisation.id,
        is_active=True,
        activity=PromotionActivity.TARGET_PERIOD_ELAPSED,
        end__gte=org_today(organisation),
    ).order_by("name")
    return [
        {
            "id": promotion.id,
            "name": promotion.name,
            "warnings": [
                w.as_dict() for w in doctor.warnings(promotion.condition, promotion.activity)
            ],
        }
        for promotion in qs
    ]

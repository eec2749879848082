"""Writes of the promotions configuration: promotions and their actions, coupon series and
their codes, the old flow's communications. Event consumption (the ledger) is in
`promotions.consumer`; messages in `promotions.messaging`."""

from __future__ import annotations

import secrets
from collections import Counter
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction

from milestones.models import Organisation, TargetGroup, User
from rules import RuleError
from rules.syntax import Token, tokenize

from .models import (
    ActionType,
    Channel,
    Communication,
    Coupon,
    CouponSeries,
    PointsBasis,
    Promotion,
    PromotionAction,
)

PROMOTION_FIELDS = ("name", "description", "activity", "start", "end", "is_active", "condition",
                    *Promotion.CAP_FIELDS)  # fmt: skip
ACTION_FIELDS = (
    "type",
    "basis",
    "points",
    "percent",
    "rounding",
    "expiry_days",
    "points_type",
    "series",
    "channel",
    "subject",
    "template",
)
MAX_ACTIONS = 20

#: an action's fields that belong to one type (the rest, `type` and `position`, to every action)
TYPE_FIELDS = ACTION_FIELDS[1:]
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


def _messages(exc: ValidationError) -> dict[str, list[str]]:
    if hasattr(exc, "error_dict"):
        return {k: list(v) for k, v in exc.message_dict.items()}
    return {"__all__": list(exc.messages)}


def _decimal(value):
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return value  # full_clean reports it


def action_fields(action_type: str, *, basis: str = "", channel: str = "") -> tuple[str, ...]:
    """The fields of TYPE_FIELDS that apply to an action of `action_type` (the amount that
    goes with the points basis, the subject for an email); with the basis or channel not
    chosen yet, the fields of every choice."""
    if action_type == ActionType.AWARD_POINTS:
        if basis == PointsBasis.FIXED:
            amount = ("points",)
        elif basis in PointsBasis.values:
            amount = ("percent",)
        else:
            amount = ("points", "percent")
        return ("basis", *amount, "rounding", "expiry_days", "points_type")
    if action_type == ActionType.ISSUE_COUPON:
        return ("series",)
    if action_type == ActionType.SEND_MESSAGE:
        subject = () if channel == Channel.SMS else ("subject",)
        return ("channel", *subject, "template")
    return ()


def action_clear_inapplicable(action: PromotionAction) -> None:
    """Blank the fields that do not apply to the action (see `action_fields`): a coupon
    action keeps no points, a points action no message, an SMS no subject."""
    keep = set(action_fields(action.type, basis=action.basis, channel=action.channel))
    for name in TYPE_FIELDS:
        if name not in keep:
            field = PromotionAction._meta.get_field(name)
            setattr(action, field.attname, None if field.null else "")


def _build_actions(organisation: Organisation, items) -> tuple[list[PromotionAction], list[str]]:
    errors: list[str] = []
    if not isinstance(items, list):
        return [], ["Actions must be a list."]
    if len(items) > MAX_ACTIONS:
        return [], [f"At most {MAX_ACTIONS} actions per promotion, got {len(items)}."]
    codes = {
        i.get("series") for i in items if isinstance(i, dict) and isinstance(i.get("series"), str)
    }
    series = {
        s.code: s for s in CouponSeries.objects.filter(organisation=organisation, code__in=codes)
    }
    actions = []
    for index, item in enumerate(items):
        label = f"action {index + 1}"
        if not isinstance(item, dict):
            errors.append(f"{label}: must be an object.")
            continue
        unknown = sorted(set(item) - set(ACTION_FIELDS))
        if unknown:
            errors.append(f"{label}: unknown field(s) {', '.join(unknown)}.")
            continue
        values = {k: item[k] for k in ACTION_FIELDS if k in item and item[k] is not None}
        ref = values.pop("series", None)
        action = PromotionAction(position=index, **{k: v for k, v in values.items()})
        for field in ("points", "percent"):
            setattr(action, field, _decimal(getattr(action, field)))
        if ref is not None:
            if isinstance(ref, CouponSeries):
                found = ref if ref.organisation_id == organisation.id else None
            else:
                found = series.get(ref)
            if found is None:
                errors.append(f"{label}: series: unknown coupon series {ref!r}.")
                continue
            action.series = found
        action_clear_inapplicable(action)
        try:
            action.full_clean(exclude=["promotion"])
        except ValidationError as exc:
            for field, messages in _messages(exc).items():
                prefix = "" if field == "__all__" else f"{field}: "
                errors.extend(f"{label}: {prefix}{m}" for m in messages)
            continue
        actions.append(action)
    return actions, errors


@transaction.atomic
def promotion_create(
    *, organisation: Organisation, data: dict, user: User | None = None
) -> Promotion:
    """Create a promotion with its ordered actions; ValidationError names what is wrong
    (a condition that does not parse names the position)."""
    promotion = Promotion(organisation=organisation, created_by=user)
    for field in PROMOTION_FIELDS:
        if field in data:
            setattr(promotion, field, data[field])
    errors: dict[str, list[str]] = {}
    try:
        promotion.full_clean(exclude=["created_by"])
    except ValidationError as exc:
        errors.update(_messages(exc))
    actions, action_errors = _build_actions(organisation, data.get("actions") or [])
    if action_errors:
        errors["actions"] = action_errors
    if errors:
        raise ValidationError(errors)
    promotion.save()
    for action in actions:
        action.promotion = promotion
    PromotionAction.objects.bulk_create(actions)
    return promotion


@transaction.atomic
def promotion_update(*, promotion: Promotion, data: dict) -> Promotion:
    """Change fields; `actions`, when given, replace the list (the ledger keeps its rows,
    keyed by position: a redelivered event does not pay position N again)."""
    promotion = Promotion.objects.select_for_update().get(pk=promotion.pk)
    for field in PROMOTION_FIELDS:
        if field in data:
            setattr(promotion, field, data[field])
    errors: dict[str, list[str]] = {}
    try:
        promotion.full_clean(exclude=["created_by"])
    except ValidationError as exc:
        errors.update(_messages(exc))
    actions = None
    if "actions" in data:
        actions, action_errors = _build_actions(promotion.organisation, data["actions"] or [])
        if action_errors:
            errors["actions"] = action_errors
    if errors:
        raise ValidationError(errors)
    promotion.save()
    if actions is not None:
        promotion.actions.all().delete()
        for action in actions:
            action.promotion = promotion
        PromotionAction.objects.bulk_create(actions)
    return promotion


# --- a target renamed in the milestones app ----------------------------------------------

#: currentEvent functions whose argument is a target name: f("T").
TARGET_NAME_CALLS = frozenset({"targetAchieved", "targetDefined", "targetExists", "targetGaps"})


def target_name_literals(condition: str, name: str) -> list[Token]:
    """The string literals of `condition` that name the target `name`: the argument of
    targetAchieved/targetDefined/targetExists/targetGaps("T"), of targetName.contains("T"),
    and the text compared with targetName (== or !=). Read with the rule language's own
    tokenizer, so a name inside another text (a message, "targetAchieved(\"T\")" in quotes)
    or in a comment is not one; a condition that does not tokenize names nothing."""
    try:
        tokens = tokenize(condition or "")
    except RuleError:
        return []

    def text(k: int) -> str:
        return tokens[k].text if 0 <= k < len(tokens) and tokens[k].kind != "string" else ""

    found = []
    for k, tok in enumerate(tokens):
        if tok.kind != "string" or tok.value != name:
            continue
        if text(k - 1) == "(" and text(k + 1) == ")":
            call = text(k - 2)
            if call in TARGET_NAME_CALLS or (
                call == "contains" and text(k - 3) == "." and text(k - 4) == "targetName"
            ):
                found.append(tok)
        elif text(k - 1) in ("==", "!=") and text(k - 2) == "targetName":
            found.append(tok)
        elif text(k + 1) in ("==", "!="):
            after = k + 4 if text(k + 2) == "currentEvent" and text(k + 3) == "." else k + 2
            if text(after) == "targetName" and text(after + 1) not in (".", "(", "["):
                found.append(tok)
    return found


def _quoted(value: str, like: str) -> str:
    """`value` as a rule-language text literal, in the quotes of the literal `like`."""
    quote = "'" if like.lstrip("rRbB").startswith("'") else '"'
    escaped = (
        value.replace("\\", "\\\\")
        .replace(quote, "\\" + quote)
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f"{quote}{escaped}{quote}"


def rule_text(value: str) -> str:
    """`value` as a rule-language text literal: `Monthly "gold"` -> `"Monthly \\"gold\\""`."""
    return _quoted(value, '"')


def condition_rename_target(condition: str, old: str, new: str) -> str:
    """`condition` with the target `old` renamed `new` where it names the target (see
    `target_name_literals`); everything else, spacing and comments included, unchanged."""
    out, at = [], 0
    for tok in target_name_literals(condition, old):
        out += [condition[at : tok.pos], _quoted(new, tok.text)]
        at = tok.pos + len(tok.text)
    return "".join(out) + condition[at:]


def promotions_naming_target(*, organisation_id: int, name: str) -> list[Promotion]:
    """The organisation's promotions (active or not) whose condition names the target."""
    return [
        p
        for p in Promotion.objects.filter(organisation_id=organisation_id).only(
            "id", "name", "condition"
        )
        if target_name_literals(p.condition, name)
    ]


@transaction.atomic
def promotions_rename_target(*, organisation_id: int, old: str, new: str) -> list[Promotion]:
    """Rename the target `old` to `new` in the conditions that name it, each promotion
    re-validated as a save would (called in the transaction that renames the target, after
    it: the new name must exist). Raises one ValidationError listing every promotion that
    would no longer validate, so the caller's rename is refused as a whole."""
    changed, problems = [], []
    for promotion in promotions_naming_target(organisation_id=organisation_id, name=old):
        condition = condition_rename_target(promotion.condition, old, new)
        try:
            changed.append(promotion_update(promotion=promotion, data={"condition": condition}))
        except ValidationError as exc:
            messages = [m for ms in _messages(exc).values() for m in ms]
            problems.append(
                f"Renaming {old!r} to {new!r} in the promotion “{promotion.name}”: "
                + " ".join(messages)
            )
    if problems:
        raise ValidationError({"rename_in_promotions": problems})
    return changed


# --- coupons -----------------------------------------------------------------------------


@transaction.atomic
def coupon_series_create(
    *,
    organisation: Organisation,
    code: str,
    name: str = "",
    description: str = "",
    valid_days: int | None = None,
    codes: list[str] | None = None,
    generate: int = 0,
) -> CouponSeries:
    series = CouponSeries(
        organisation=organisation,
        code=code,
        name=name,
        description=description,
        valid_days=valid_days,
    )
    series.full_clean()
    series.save()
    if codes:
        coupons_add(series=series, codes=codes)
    if generate:
        coupons_generate(series=series, count=generate)
    return series


MAX_CODES_PER_CALL = 100_000


@transaction.atomic
def coupons_add(*, series: CouponSeries, codes: list[str]) -> int:
    """Add given codes to a series; a code already used in the organisation is refused."""
    cleaned = [str(c).strip() for c in codes if str(c).strip()]
    if len(cleaned) > MAX_CODES_PER_CALL:
        raise ValidationError({"codes": [f"At most {MAX_CODES_PER_CALL} codes at a time."]})
    if any(len(c) > 64 for c in cleaned):
        raise ValidationError({"codes": ["A coupon code has at most 64 characters."]})
    duplicates = sorted(c for c, n in Counter(cleaned).items() if n > 1)
    if duplicates:
        raise ValidationError(
            {"codes": ["The same code appears twice: " + ", ".join(duplicates[:10])]}
        )
    taken = set(
        Coupon.objects.filter(organisation_id=series.organisation_id, code__in=cleaned)
        .values_list("code", flat=True)
        .iterator()
    )
    if taken:
        raise ValidationError(
            {"codes": ["Already used in this organisation: " + ", ".join(sorted(taken)[:10])]}
        )
    Coupon.objects.bulk_create(
        [Coupon(organisation_id=series.organisation_id, series=series, code=c) for c in cleaned],
        batch_size=2000,
    )
    return len(cleaned)


@transaction.atomic
def coupons_generate(*, series: CouponSeries, count: int, length: int = 10) -> int:
    """Generate `count` random codes (`SERIES-XXXXXXXXXX`), unique in the organisation."""
    if count < 1 or count > MAX_CODES_PER_CALL:
        raise ValidationError({"generate": [f"Generate between 1 and {MAX_CODES_PER_CALL} codes."]})
    made = 0
    while made < count:
        want = count - made
        batch = {
            f"{series.code}-" + "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))
            for _ in range(want)
        }
        taken = set(
            Coupon.objects.filter(
                organisation_id=series.organisation_id, code__in=batch
            ).values_list("code", flat=True)
        )
        fresh = [c for c in batch if c not in taken]
        Coupon.objects.bulk_create(
            [Coupon(organisation_id=series.organisation_id, series=series, code=c) for c in fresh],
            batch_size=2000,
        )
        made += len(fresh)
    return made


# --- communications (the old flow) --------------------------------------------------------


@transaction.atomic
def communication_set(
    *,
    target_group: TargetGroup,
    kind: str,
    channel: str,
    template: str,
    subject: str = "",
    is_active: bool = True,
) -> Communication:
    """Create or replace the communication of one kind and channel for a milestone."""
    comm = Communication.objects.filter(
        target_group=target_group, kind=kind, channel=channel
    ).first()
    if comm is None:
        comm = Communication(
            organisation_id=target_group.organisation_id,
            target_group=target_group,
            kind=kind,
            channel=channel,
        )
    comm.template, comm.subject, comm.is_active = template, subject, is_active
    comm.full_clean(validate_unique=False)
    comm.save()
    return comm

"""Writes for organisations, users and stores."""

import json

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from rest_framework.authtoken.models import Token

from ..models import Heartbeat, Organisation, Role, Store, User


class ServiceError(ValueError):
    """A refused request, with a message meant for the person who made it."""


@transaction.atomic
def organisation_get_or_create(
    *, slug: str, name: str | None = None, tz: str = "UTC"
) -> Organisation:
    org = Organisation.objects.filter(slug=slug).first()
    if org is not None:
        return org
    org = Organisation(slug=slug, name=name or slug, timezone=tz)
    org.full_clean()
    org.save()
    return org


@transaction.atomic
def award_switch_affects(*, organisation: Organisation, new_value: bool) -> list[dict]:
    """What changes meaning if the award switch becomes `new_value` (asked of the apps above
    through `milestones.signals.award_switch_changing`); [] when it does not change."""
    from ..signals import award_switch_changing

    if bool(new_value) == bool(organisation.award_when_target_achieved):
        return []
    out: list[dict] = []
    for _receiver, answer in award_switch_changing.send(
        sender=Organisation, organisation=organisation, new_value=bool(new_value)
    ):
        out.extend(answer or [])
    return out


def organisation_update(*, organisation: Organisation, **fields) -> Organisation:
    for key, value in fields.items():
        setattr(organisation, key, value)
    organisation.full_clean()
    organisation.save()
    return organisation


@transaction.atomic
def user_get_or_create(
    *, organisation: Organisation, username: str, role: str, password: str | None = None
) -> tuple[User, Token]:
    if role not in Role.values:
        raise ServiceError(f"Unknown role {role!r}: use one of {', '.join(Role.values)}.")
    user = User.objects.filter(username=username).first()
    if user is None:
        user = User(username=username, organisation=organisation, role=role)
    elif user.organisation_id != organisation.id:
        raise ServiceError(f"User {username!r} belongs to another organisation.")
    user.role = role
    # Configurers and member care work in the admin screens; integration accounts use the API.
    user.is_staff = role in (Role.CONFIGURER, Role.MEMBER_CARE)
    if password:
        user.set_password(password)
    elif not user.has_usable_password() or user.pk is None:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    token, _ = Token.objects.get_or_create(user=user)
    return user, token


def org_user_json(*, organisation: Organisation, user: User, token: Token) -> str:
    return json.dumps({"org": organisation.slug, "user": user.username, "token": token.key})


@transaction.atomic
def store_create(*, organisation: Organisation, code: str, **fields) -> Store:
    store = Store(organisation=organisation, code=code, **fields)
    store.full_clean()
    store.save()
    return store


def heartbeat_record(*, name: str) -> None:
    now = timezone.now()
    updated = Heartbeat.objects.filter(name=name).update(last_seen=now, runs=F("runs") + 1)
    if not updated:
        Heartbeat.objects.get_or_create(name=name, defaults={"last_seen": now, "runs": 1})

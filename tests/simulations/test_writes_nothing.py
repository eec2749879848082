"""A simulation writes nothing of real milestones and sends nothing: not when it checks the
request, not when it runs, whatever its promotions would do (points, coupons, messages, a
cap's 80 % warning), for an unsaved milestone or an existing one with changed values."""

from __future__ import annotations

from decimal import Decimal

import pytest
from celery.app.task import Task
from django.core import mail

from enrolment.models import (
    AudienceMember,
    CustomerTargetValue,
    Enrolment,
    EnrolmentNotification,
)
from evaluation.models import (
    Activity,
    Contribution,
    CycleAnchor,
    EvaluationRun,
    GroupAchievement,
    Progress,
    ProgressDay,
    ReprocessRun,
    TargetEvent,
)
from milestones.models import AuditEntry, Period, SubTarget, Target, TargetGroup
from promotions.models import Award, Coupon, Message, Promotion, PromotionAction
from simulations.models import Simulation
from tests.factories import (
    AudienceGroupFactory,
    CouponSeriesFactory,
    EnrolmentFactory,
    PromotionFactory,
    TargetGroupFactory,
    UserFactory,
    target_data,
)

pytestmark = pytest.mark.django_db

MODELS = [
    TargetGroup, Target, SubTarget, Period, AuditEntry, Enrolment, EnrolmentNotification,
    CustomerTargetValue,
    AudienceMember, Activity, Progress, ProgressDay, Contribution, CycleAnchor,
    GroupAchievement, TargetEvent, EvaluationRun, ReprocessRun, Promotion, PromotionAction,
    Award, Message,
]  # fmt: skip


def counts() -> dict:
    out = {m.__name__: m.objects.count() for m in MODELS}
    out["coupons issued"] = Coupon.objects.filter(issued_at__isnull=False).count()
    return out


@pytest.fixture
def sent_tasks(monkeypatch):
    """The names of the Celery tasks sent (eager or not) while the test runs."""
    names = []
    original = Task.apply_async

    def spy(self, *args, **kwargs):
        names.append(self.name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Task, "apply_async", spy)
    return names


def test_a_simulation_writes_nothing_real_and_sends_nothing(
    org, configurer, api, seed, window, eager, sent_tasks, django_capture_on_commit_callbacks
):
    customers = seed()
    UserFactory(username="carol", organisation=org, role="configurer", email="carol@example.com")
    CouponSeriesFactory(organisation=org, code="SIM10", generate=50)
    start, end = window
    group = TargetGroupFactory(
        organisation=org, name="Spend club", start=start, end=end,
        cycle={"type": "fixed_calendar", "frequency": "monthly", "start": start},
        targets=[target_data("Club spend", value=900, sub_targets=[
            {"name": "Club half", "criteria": "percentage", "value": Decimal(50)}])],
    )  # fmt: skip
    EnrolmentFactory(target_group=group, customer=customers[1])
    target = group.targets.get()
    capped = PromotionFactory(
        organisation=org, name="Club points", start=start, end=end,
        condition='currentEvent.targetAchieved("Club spend") > 0',
        actions=[{"type": "award_points", "basis": "fixed", "points": 100},
                 {"type": "issue_coupon", "series": "SIM10"},
                 {"type": "send_message", "channel": "email", "template": "Hi {customer.name}"}],
        cap_points_total=Decimal(500),  # passes 80 % at once: live would email configurers
    )  # fmt: skip
    before = counts()
    w = {"start": start.isoformat(), "end": end.isoformat()}
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api(configurer).post(
            "/api/v1/simulations/",
            {"target_group_id": group.pk, "window": w, "promotions": [capped.pk],
             "changes": {"targets": [{"id": target.pk, "name": "Club spend 2", "value": 300}],
                         "rename_in_promotions": True},
             "draft_promotions": [{"name": "Draft reward", "condition": "true", "actions": [
                 {"type": "award_points", "basis": "fixed", "points": 7},
                 {"type": "send_message", "channel": "sms", "template": "Well done"}]}]},
            format="json",
        )  # fmt: skip
    assert response.status_code == 202, response.content
    simulation = Simulation.objects.get()
    assert simulation.status == "done", simulation.error
    result = simulation.result
    assert result["liability"]["points"] > 0 and result["liability"]["coupons"] > 0
    assert any(c["awards"]["messages"] for c in result["targets"][0]["cycles"])
    assert any(c["awards"]["capped"] for c in result["targets"][0]["cycles"])
    assert result["targets"][0]["name"] == "Club spend 2"

    assert counts() == before  # not one row of a real milestone, promotion or ledger
    assert mail.outbox == []  # no cap warning, no message
    assert sent_tasks == ["simulations.tasks.run_simulation"]  # nothing else queued
    assert len(callbacks) == 1  # and nothing else waiting for a commit
    group.refresh_from_db()
    target.refresh_from_db()
    assert (group.name, target.name, target.value) == ("Spend club", "Club spend", 900)
    capped.refresh_from_db()
    assert capped.condition == 'currentEvent.targetAchieved("Club spend") > 0'
    assert capped.cap_warned == {}


def test_an_unsaved_audience_milestone_enrols_and_pays_nothing_real(
    org, configurer, api, seed, window, eager, sent_tasks, django_capture_on_commit_callbacks
):
    """Made in the rolled-back transaction, the milestone enrols the audience's members as
    a real one would (notifications, enrolment events): none of it stays or is sent."""
    customers = seed()
    audience = AudienceGroupFactory(organisation=org, customers=customers[:10])
    start, end = window
    before = counts()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api(configurer).post(
            "/api/v1/simulations/",
            {"target_group": {
                "name": "Audience spend", "start": start.isoformat(), "end": end.isoformat(),
                "till_code": "T1", "cycle": {"type": "fixed_calendar", "frequency": "monthly"},
                "enrolment": {"mode": "audience_group", "audience_group": audience.pk},
                "send_enrolment_trigger": True,
                "targets": [{"name": "Audience target", "kpi": "gross_sales", "value": 900}]},
             "window": {"start": start.isoformat(), "end": end.isoformat()},
             "draft_promotions": [
                 {"name": "Welcome", "activity": "enrolled", "condition": "true",
                  "actions": [{"type": "send_message", "channel": "sms", "template": "Welcome"}]},
                 {"name": "Cycle end", "condition": "!currentEvent.isTargetAchievedEvent",
                  "actions": [{"type": "award_points", "basis": "fixed", "points": 5}]}]},
            format="json",
        )  # fmt: skip
    assert response.status_code == 202, response.content
    simulation = Simulation.objects.get()
    assert simulation.status == "done", simulation.error
    cycles = simulation.result["targets"][0]["cycles"]
    assert [c["participants"] for c in cycles] == [10, 10, 10]  # the audience's members
    assert simulation.result["liability"]["points"] == 5 * 10 * 3  # each member, each cycle
    # a welcome to each member, dated when the milestone starts: the first cycle's
    assert [c["awards"]["messages"] for c in cycles] == [10, 0, 0]
    assert counts() == before
    assert mail.outbox == []
    assert sent_tasks == ["simulations.tasks.run_simulation"]
    assert len(callbacks) == 1


def test_checking_a_refused_request_writes_nothing(api, configurer, org, stores, window):
    before = counts()
    start, end = window
    response = api(configurer).post(
        "/api/v1/simulations/",
        {"target_group": {"name": "Half made", "start": start.isoformat(), "end": end.isoformat(),
                          "till_code": "T1", "cycle": {"type": "fixed_calendar", "frequency": "monthly"},
                          "targets": [{"name": "Ok", "kpi": "gross_sales", "value": 10}]},
         "window": {"start": start.isoformat(), "end": end.isoformat()},
         "draft_promotions": [{"name": "Bad", "condition": "nonsense(", "actions": []}]},
        format="json",
    )  # fmt: skip
    assert response.status_code == 400
    assert "condition" in response.json()["draft_promotions"][0]
    assert counts() == before
    assert Simulation.objects.count() == 0

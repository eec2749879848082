from datetime import UTC, date, datetime

import pytest

from evaluation.cycle_end import evaluate_cycles
from evaluation.models import Progress, ReprocessRun
from tests.evaluation.conftest import txn
from tests.factories import EnrolmentFactory

pytestmark = pytest.mark.django_db


def test_reprocess_through_the_api_queues_a_run_with_progress(
    api,
    configurer,
    member_care,
    make_group,
    post,
    track,
    stores,
    django_capture_on_commit_callbacks,
    monkeypatch,
):
    post(txn(1, "2026-03-04T11:00:00+00:00", 700))
    track()
    group = make_group("Later")
    queued = []
    monkeypatch.setattr(
        "evaluation.tasks.reprocess_milestone.delay", lambda run_id: queued.append(run_id)
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = api(configurer).post(f"/api/v1/target-groups/{group.id}/reprocess/")
    assert response.status_code == 202
    body = response.json()
    assert (body["status"], body["total"], body["processed"]) == ("pending", 1, 0)
    assert queued == [body["id"]]
    from evaluation.reprocess import reprocess_execute

    reprocess_execute(run_id=body["id"])
    status = api(member_care).get(f"/api/v1/reprocess-runs/{body['id']}/").json()
    assert (status["status"], status["processed"], status["total"]) == ("done", 1, 1)
    assert Progress.objects.get().achieved == 700
    assert api(member_care).post(f"/api/v1/target-groups/{group.id}/reprocess/").status_code == 403


def test_evaluation_runs_are_listed_with_their_progress(
    api, member_care, other_configurer, make_group
):
    group = make_group(
        "March",
        cycle={
            "type": "fixed_calendar",
            "frequency": "monthly",
            "start": date(2026, 3, 1),
            "count": 1,
        },
    )
    EnrolmentFactory(target_group=group, customer__mobile="9000000001")
    evaluate_cycles(as_of=datetime(2026, 4, 2, tzinfo=UTC))
    (run,) = api(member_care).get(f"/api/v1/evaluation-runs/?target_group={group.id}").json()
    assert (
        run["status"],
        run["total"],
        run["processed"],
        run["events_written"],
        run["period"],
    ) == ("done", 1, 1, 1, "March P1")
    assert api(other_configurer).get(f"/api/v1/evaluation-runs/{run['id']}/").status_code == 404


def test_the_admin_action_starts_a_reprocess_run(
    admin_client_for, configurer, make_group, django_capture_on_commit_callbacks, monkeypatch
):
    group = make_group("Admin reprocess")
    monkeypatch.setattr("evaluation.tasks.reprocess_milestone.delay", lambda run_id: None)
    client = admin_client_for(configurer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/milestones/targetgroup/",
            {"action": "reprocess_selected", "_selected_action": [group.id]},
            follow=True,
        )
    assert ReprocessRun.objects.filter(target_group=group).count() == 1
    assert b"follow its progress" in response.content
    run = ReprocessRun.objects.get(target_group=group)
    assert f"/care/runs/reprocess/{run.id}/".encode() in response.content
    listing = client.get("/admin/evaluation/reprocessrun/")
    assert b"Admin reprocess" in listing.content and b"<progress" in listing.content


def test_the_milestone_view_links_to_its_insights_and_uploads(
    admin_client_for, configurer, make_group
):
    group = make_group("Linked")
    page = admin_client_for(configurer).get(f"/admin/milestones/targetgroup/{group.id}/view/")
    assert f'href="/care/milestones/{group.id}/insights/"'.encode() in page.content
    assert f'href="/care/milestones/{group.id}/imports/"'.encode() in page.content

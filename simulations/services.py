"""Writes of simulations: accept a request (checked by building its scenario once, which
writes nothing), then run it (a worker claims it, replays, stores the result).

Status moves, each a conditional update so a second worker on the same run stops:
pending -> running (`simulation_run` claims it), running -> done | failed."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from milestones.models import Organisation, User

from .engine import simulate
from .inputs import SimulationRefused, parse
from .models import Simulation, SimulationStatus
from .scenario import scenario_build

log = logging.getLogger(__name__)


@transaction.atomic
def simulation_create(
    *, organisation: Organisation, user: User | None, data: dict, label: str = "",
    queue: bool = True,
) -> Simulation:  # fmt: skip
    """Check the request (SimulationRefused with the API's error shape when it is refused:
    the same messages as the milestone and promotion endpoints) and store it pending; the
    run is queued once this transaction commits."""
    request = parse(data, organisation=organisation)
    scenario_build(organisation=organisation, request=request, user=user)
    simulation = Simulation(
        organisation=organisation, created_by=user, input=data, label=label[:200]
    )
    simulation.full_clean()
    simulation.save()
    if queue:
        from .tasks import run_simulation

        transaction.on_commit(lambda: run_simulation.delay(simulation.pk))
    return simulation


@transaction.atomic
def simulations_create(
    *, organisation: Organisation, user: User | None, runs: list[tuple[str, dict]]
) -> list[Simulation]:
    """Several runs at once (the Simulate form's run and its comparison): all accepted, or
    none (the first refusal, SimulationRefused)."""
    return [
        simulation_create(organisation=organisation, user=user, data=data, label=label)
        for label, data in runs
    ]


def simulation_run(*, simulation_id: int) -> Simulation | None:
    """Run a pending simulation; one that is missing or already claimed is left alone.

    Its progress (`processed` of `total` customers) is written as it goes, outside any
    transaction, so the page and the API show it while the run lasts."""
    claimed = Simulation.objects.filter(pk=simulation_id, status=SimulationStatus.PENDING).update(
        status=SimulationStatus.RUNNING, started_at=timezone.now()
    )
    simulation = (
        Simulation.objects.select_related("organisation", "created_by")
        .filter(pk=simulation_id)
        .first()
    )
    if not claimed or simulation is None:
        return simulation

    def progress(done: int, total: int) -> None:
        Simulation.objects.filter(pk=simulation_id).update(processed=done, total=total)

    try:
        request = parse(simulation.input, organisation=simulation.organisation)
        scenario = scenario_build(
            organisation=simulation.organisation, request=request, user=simulation.created_by
        )
        result = simulate(scenario, progress=progress)
    except SimulationRefused as exc:
        _finish(simulation_id, SimulationStatus.FAILED, error=refusal_text(exc.errors))
    except Exception as exc:  # noqa: BLE001 - recorded on the run for the person waiting
        log.exception("simulation %s failed", simulation_id)
        _finish(simulation_id, SimulationStatus.FAILED, error=f"Unexpected error: {exc}")
    else:
        _finish(simulation_id, SimulationStatus.DONE, result=result)
    simulation.refresh_from_db()
    return simulation


def _finish(simulation_id: int, status: str, *, result=None, error: str = "") -> None:
    Simulation.objects.filter(pk=simulation_id, status=SimulationStatus.RUNNING).update(
        status=status, result=result, error=error[:4000], finished_at=timezone.now()
    )


def refusal_text(errors, prefix: str = "") -> str:
    """A refusal's messages as lines (`window: ...`), for a failed run's `error`."""
    lines = []
    if isinstance(errors, dict):
        for key, value in errors.items():
            lines.append(refusal_text(value, f"{prefix}{key}: " if key != "detail" else prefix))
    elif isinstance(errors, list):
        for value in errors:
            lines.append(refusal_text(value, prefix))
    elif errors:
        lines.append(f"{prefix}{errors}")
    return "\n".join(line for line in lines if line)

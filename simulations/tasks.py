"""Celery task: a thin wrapper that takes the simulation's id and calls one service."""

from celery import shared_task


@shared_task
def run_simulation(simulation_id: int) -> str | None:
    """Replay one simulation (idempotent: a run already claimed or finished is left)."""
    from .services import simulation_run

    simulation = simulation_run(simulation_id=simulation_id)
    return simulation.status if simulation else None

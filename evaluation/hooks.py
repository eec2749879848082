"""What happens after events are written: other parts register here (promotions consume the
outbox; audience groups refresh on achievements). Called after the writing transaction."""

AFTER_TRACKING = []  # fn(result: TrackResult) -> None
AFTER_EVALUATION = []  # fn(event_ids: list[int]) -> None


def run_after_tracking(result) -> None:
    for hook in AFTER_TRACKING:
        hook(result)


def run_after_evaluation(event_ids) -> None:
    for hook in AFTER_EVALUATION:
        hook(event_ids)

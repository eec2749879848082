"""What happens after events are written: other parts register here (promotions consume the
outbox; audience groups refresh on achievements). Called after the tracking transaction."""

AFTER_TRACKING = []  # fn(result: TrackResult) -> None


def run_after_tracking(result) -> None:
    for hook in AFTER_TRACKING:
        hook(result)

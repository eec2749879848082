"""The pages read what the engine tracked: the evaluation tests' fixtures build it."""

from tests.evaluation.conftest import make_group, post, stores, track

__all__ = ["make_group", "post", "stores", "track"]

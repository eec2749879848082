from django.apps import AppConfig


class PromotionsConfig(AppConfig):
    name = "promotions"

    def ready(self):
        from enrolment.signals import customers_enrolled
        from evaluation import hooks, selectors
        from milestones.signals import target_group_saved, target_rename_check, target_renamed

        from . import receivers, tasks
        from .selectors import actions_for_events

        # The outbox: consume new target events after tracking and after cycle-end evaluation.
        _register(hooks.AFTER_TRACKING, tasks.on_tracking)
        if not hasattr(hooks, "AFTER_EVALUATION"):
            hooks.AFTER_EVALUATION = []
        _register(hooks.AFTER_EVALUATION, tasks.on_evaluation)
        # The customer's milestones timeline shows the actions taken per event.
        _register(selectors.ACTION_LOOKUPS, actions_for_events)
        customers_enrolled.connect(
            receivers.on_customers_enrolled, dispatch_uid="promotions-enrolled-events"
        )
        target_group_saved.connect(
            tasks.on_target_group_saved, dispatch_uid="promotions-target-values-check"
        )
        # A target's name is what conditions use: a rename is checked against them and,
        # when asked, carried into them.
        target_rename_check.connect(
            receivers.on_target_rename_check, dispatch_uid="promotions-target-rename-check"
        )
        target_renamed.connect(
            receivers.on_target_renamed, dispatch_uid="promotions-target-renamed"
        )


def _register(hooks: list, fn) -> None:
    if fn not in hooks:
        hooks.append(fn)

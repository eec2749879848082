from django.apps import AppConfig


class PromotionsConfig(AppConfig):
    name = "promotions"

    def ready(self):
        from enrolment.signals import customers_enrolled
        from evaluation.signals import activities_tracked, cycles_evaluated, timeline_actions
        from milestones.signals import (
            award_switch_changing,
            demo_loaded,
            target_group_saved,
            target_rename_check,
            target_renamed,
        )

        from . import admin_delivery, receivers, tasks  # noqa: F401 - admin_delivery registers
        from .demo import load_demo_promotions

        # The outbox: consume new target events after tracking and after cycle-end evaluation.
        activities_tracked.connect(tasks.on_tracking, dispatch_uid="promotions-consume-tracked")
        cycles_evaluated.connect(tasks.on_evaluation, dispatch_uid="promotions-consume-evaluated")
        # The customer's milestones timeline shows the actions taken per event.
        timeline_actions.connect(receivers.on_timeline_actions, dispatch_uid="promotions-timeline")
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
        # The award switch changes what some conditions mean: the doctor lists them.
        award_switch_changing.connect(
            receivers.on_award_switch_changing, dispatch_uid="promotions-award-switch"
        )
        target_renamed.connect(
            receivers.on_target_renamed, dispatch_uid="promotions-target-renamed"
        )
        demo_loaded.connect(load_demo_promotions, dispatch_uid="promotions-demo")

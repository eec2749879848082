from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"

    def ready(self):
        from enrolment import signals as enrolment_signals
        from evaluation import signals as evaluation_signals
        from milestones import signals as milestone_signals
        from promotions import signals as promotion_signals

        from . import receivers

        evaluation_signals.target_events_written.connect(
            receivers.target_events_written, dispatch_uid="webhooks.target_events_written"
        )
        promotion_signals.awards_written.connect(
            receivers.awards_written, dispatch_uid="webhooks.awards_written"
        )
        enrolment_signals.notifications_written.connect(
            receivers.notifications_written, dispatch_uid="webhooks.notifications_written"
        )
        milestone_signals.target_group_activation_changed.connect(
            receivers.target_group_activation_changed,
            dispatch_uid="webhooks.target_group_activation_changed",
        )

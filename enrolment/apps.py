from django.apps import AppConfig


class EnrolmentConfig(AppConfig):
    name = "enrolment"
    label = "enrolment"
    verbose_name = "Customers and enrolment"

    def ready(self):
        from milestones import signals as milestone_signals

        from . import receivers

        milestone_signals.target_group_saved.connect(
            receivers.on_target_group_saved, dispatch_uid="enrolment.target_group_saved"
        )
        milestone_signals.enrolment_summary_requested.connect(
            receivers.enrolment_summary, dispatch_uid="enrolment.enrolment_summary"
        )
        milestone_signals.audience_groups_requested.connect(
            receivers.audience_group_choices, dispatch_uid="enrolment.audience_group_choices"
        )

from django.apps import AppConfig


class EnrolmentConfig(AppConfig):
    name = "enrolment"
    label = "enrolment"
    verbose_name = "Customers and enrolment"

    def ready(self):
        from milestones import selectors as milestone_selectors
        from milestones import signals as milestone_signals

        from . import receivers

        milestone_signals.target_group_saved.connect(
            receivers.on_target_group_saved, dispatch_uid="enrolment.target_group_saved"
        )
        if receivers.enrolment_summary not in milestone_selectors.ENROLMENT_SUMMARY_HOOKS:
            milestone_selectors.ENROLMENT_SUMMARY_HOOKS.append(receivers.enrolment_summary)

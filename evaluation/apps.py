from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    name = "evaluation"

    def ready(self):
        from milestones.signals import demo_loaded

        from .demo import load_demo_activities

        demo_loaded.connect(load_demo_activities, dispatch_uid="evaluation-demo-activities")

        from milestones import signals as milestone_signals

        from . import receivers

        milestone_signals.reprocess_available.connect(
            receivers.reprocess_available, dispatch_uid="evaluation.reprocess_available"
        )
        milestone_signals.reprocess_requested.connect(
            receivers.reprocess_requested, dispatch_uid="evaluation.reprocess_requested"
        )

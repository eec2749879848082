from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    name = "evaluation"

    def ready(self):
        from milestones.signals import demo_loaded

        from .demo import load_demo_activities

        demo_loaded.connect(load_demo_activities, dispatch_uid="evaluation-demo-activities")

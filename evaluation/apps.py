from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    name = "evaluation"

    def ready(self):
        from milestones.demo import DEMO_HOOKS

        from .demo import load_demo_activities

        if load_demo_activities not in DEMO_HOOKS:
            DEMO_HOOKS.append(load_demo_activities)

"""Demo data for a first look: one organisation, stores and tills, a user per role."""

from django.core.management.base import BaseCommand

from milestones import demo


class Command(BaseCommand):
    help = "Load demo data (idempotent) and print the logins."

    def handle(self, *args, **options):
        logins = demo.load_demo()
        self.stdout.write("Demo logins (organisation 'demo'):")
        for username, password, role, token in logins:
            self.stdout.write(
                f"  {role:<12} user {username:<12} password {password:<22} API token {token}"
            )

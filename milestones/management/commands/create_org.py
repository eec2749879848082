from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from milestones import services
from milestones.models import Role


class Command(BaseCommand):
    help = "Create (or reuse) an organisation and a user in it; print {org, user, token} as JSON."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", default=None)
        parser.add_argument("--timezone", default="UTC")
        parser.add_argument("--user", required=True, dest="username")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--password", default=None)

    def handle(self, *args, slug, name, timezone, username, role, password, **options):
        try:
            org = services.organisation_get_or_create(slug=slug, name=name, tz=timezone)
            user, token = services.user_get_or_create(
                organisation=org, username=username, role=role, password=password
            )
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            )
        except services.ServiceError as exc:
            raise CommandError(str(exc))
        self.stdout.write(services.org_user_json(organisation=org, user=user, token=token))

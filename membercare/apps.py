from django.apps import AppConfig


class MembercareConfig(AppConfig):
    """The pages for people: member-care search and timeline, insights, uploads and
    progress. Reads the selectors of every app below; owns no engine logic."""

    name = "membercare"
    verbose_name = "Member care"

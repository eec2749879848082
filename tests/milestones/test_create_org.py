import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from milestones.models import Organisation, Role, User


def create_org(*args):
    out = StringIO()
    call_command("create_org", *args, stdout=out)
    return json.loads(out.getvalue().strip())


@pytest.mark.django_db
def test_create_org_prints_one_json_line_with_a_working_token(api):
    result = create_org(
        "acme",
        "--name",
        "Acme",
        "--timezone",
        "Asia/Kolkata",
        "--user",
        "alice",
        "--role",
        "configurer",
    )
    assert set(result) == {"org", "user", "token"}
    assert result["org"] == "acme" and result["user"] == "alice"
    org = Organisation.objects.get(slug="acme")
    assert org.name == "Acme" and org.timezone == "Asia/Kolkata"
    user = User.objects.get(username="alice")
    assert user.organisation == org and user.role == Role.CONFIGURER
    client = api()
    client.credentials(HTTP_AUTHORIZATION=f"Token {result['token']}")
    response = client.get("/api/v1/org-settings/")
    assert response.status_code == 200
    assert response.json()["timezone"] == "Asia/Kolkata"


@pytest.mark.django_db
def test_create_org_reuses_the_org_and_adds_users_of_other_roles():
    first = create_org("acme", "--name", "Acme", "--user", "alice", "--role", "configurer")
    second = create_org("acme", "--name", "Acme", "--user", "bob", "--role", "member_care")
    again = create_org("acme", "--name", "Acme", "--user", "alice", "--role", "configurer")
    assert Organisation.objects.filter(slug="acme").count() == 1
    assert User.objects.get(username="bob").role == Role.MEMBER_CARE
    assert again["token"] == first["token"]
    assert second["token"] != first["token"]


@pytest.mark.django_db
def test_create_org_refuses_an_unknown_timezone():
    with pytest.raises(CommandError, match="Unknown timezone"):
        create_org("acme", "--timezone", "Mars/Olympus", "--user", "alice", "--role", "configurer")
    assert not Organisation.objects.exists()


@pytest.mark.django_db
def test_create_org_refuses_a_user_of_another_org():
    create_org("acme", "--user", "alice", "--role", "configurer")
    with pytest.raises(CommandError, match="another organisation"):
        create_org("globex", "--user", "alice", "--role", "configurer")


@pytest.mark.django_db
def test_create_org_refuses_an_unknown_role():
    with pytest.raises(CommandError):
        create_org("acme", "--user", "alice", "--role", "boss")
    assert not User.objects.exists()

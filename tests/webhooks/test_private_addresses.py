"""An endpoint may not point into the product's own network (SSRF): loopback, private,
link-local (cloud metadata) and reserved addresses are refused at the field."""

import pytest

from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8000/hook", "https://localhost/hook", "http://10.1.2.3/hook",
    "http://192.168.0.10/hook", "http://169.254.169.254/latest/meta-data/", "http://[::1]/hook",
])  # fmt: skip
def test_a_private_address_is_refused_at_the_url(api, integration, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    response = api(integration).post(
        "/api/v1/webhook-endpoints/", {"url": url, "events": ["target.achieved"]}, format="json"
    )
    assert response.status_code == 400
    assert "private or local network address" in response.json()["url"][0]
    assert not WebhookEndpoint.objects.exists()


def test_a_public_address_is_accepted(api, integration, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    response = api(integration).post(
        "/api/v1/webhook-endpoints/",
        {"url": "https://8.8.8.8/hook", "events": ["target.achieved"]},
        format="json",
    )
    assert response.status_code == 201, response.content

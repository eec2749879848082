"""Webhook screens: the organisation's endpoints (the secret is shown once, on the page that
follows creating one) and the delivery log, each delivery with its attempts (status,
response time, error) and a "Resend" action. Writes go through `services`, as the API's do.
Times are in the organisation's time zone (OrganisationTimezoneMiddleware)."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from common.admin import OrgScopedAdmin, OrgScopedFields, ReadOnlyAdmin, sees_every_organisation
from common.roles import Role

from . import services
from .models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEventType


class EndpointForm(forms.ModelForm):
    url = forms.CharField(
        label="URL",
        max_length=2000,
        help_text="Where the events are POSTed: an http:// or https:// address.",
        widget=forms.URLInput(attrs={"size": 80}),
    )
    events = forms.MultipleChoiceField(
        label="Event types",
        choices=WebhookEventType.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="The events sent to this endpoint (docs/webhooks.md shows each one's data).",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "events", "description", "is_active"]

    def clean_url(self):
        try:
            return services.clean_url(self.cleaned_data.get("url"))
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["url"])

    def clean_events(self):
        try:
            return services.clean_events(self.cleaned_data.get("events"))
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["events"])


def error_summary(form) -> list[dict]:
    """Every error of the form, each linking to its input (the summary at the top)."""
    items = []
    for name, errors in form.errors.items():
        field = form.fields.get(name)
        for message in errors:
            if field is None:
                items.append({"label": "", "message": message, "anchor": "content-main"})
            else:
                anchor = form[name].id_for_label or f"id_{name}"
                if isinstance(field.widget, forms.CheckboxSelectMultiple):
                    anchor = f"id_{name}_0"
                items.append({"label": field.label or name, "message": message, "anchor": anchor})
    return items


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(OrgScopedAdmin):
    form = EndpointForm
    change_form_template = "admin/webhooks/webhookendpoint/change_form.html"
    list_display = ["url", "event_list", "is_active", "health", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["url", "description"]
    readonly_fields = ["secret_note", "failing_since", "disabled_at", "disabled_reason",
                       "created_at", "deliveries_link"]  # fmt: skip

    def get_fields(self, request, obj=None):
        fields = ["url", "events", "description"]
        if sees_every_organisation(request.user):
            fields.insert(0, "organisation")
        if obj is None:  # a new endpoint is active; its state shows once it exists
            return fields
        return [*fields, "is_active", "secret_note", "failing_since", "disabled_at",
                "disabled_reason", "created_at", "deliveries_link"]  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    @admin.display(description="Event types")
    def event_list(self, obj):
        return ", ".join(obj.events or []) or "-"

    @admin.display(description="Health")
    def health(self, obj):
        if not obj.is_active:
            return "Disabled" + (f": {obj.disabled_reason}" if obj.disabled_reason else "")
        if obj.failing_since:
            return "Failing"
        return "OK"

    @admin.display(description="Signing secret")
    def secret_note(self, obj):
        return "Shown once, when the endpoint was created. Lost it? Create a new endpoint."

    @admin.display(description="Deliveries")
    def deliveries_link(self, obj):
        url = (
            reverse("admin:webhooks_webhookdelivery_changelist") + f"?endpoint__id__exact={obj.pk}"
        )
        return format_html('<a href="{}">The delivery log of this endpoint</a>', url)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            fields = {
                k: data[k] for k in ("url", "events", "description", "is_active") if k in data
            }
            saved = services.endpoint_update(endpoint=obj, data=fields)
        else:
            saved = services.endpoint_create(
                organisation=obj.organisation if obj.organisation_id else request.user.organisation,
                url=data["url"],
                events=data["events"],
                description=data.get("description", ""),
            )
        for field in WebhookEndpoint._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))

    def response_add(self, request, obj, post_url_continue=None):
        """The only page that ever shows the secret."""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Webhook endpoint created",
            "endpoint": obj,
            "change_url": reverse("admin:webhooks_webhookendpoint_change", args=[obj.pk]),
            "list_url": reverse("admin:webhooks_webhookendpoint_changelist"),
        }
        return TemplateResponse(request, "admin/webhooks/webhookendpoint/created.html", context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        form = context.get("adminform").form if context.get("adminform") else None
        context["error_summary"] = error_summary(form) if form is not None and form.is_bound else []
        return super().render_change_form(request, context, add, change, form_url, obj)


class AttemptInline(OrgScopedFields, admin.TabularInline):
    model = WebhookAttempt
    fields = ["number", "attempted_at", "status_code", "response_time", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "Attempts"

    @admin.display(description="Response time")
    def response_time(self, obj):
        return "-" if obj.response_ms is None else f"{obj.response_ms:,} ms"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return True  # the delivery's own admin decides who sees it


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    """The delivery log: what was sent where, each attempt, and Resend."""

    view_roles = (Role.CONFIGURER,)
    change_form_template = "admin/webhooks/webhookdelivery/change_form.html"
    list_display = ["created_at", "event_type", "endpoint", "status", "attempts",
                    "last_status_code", "response_time", "delivered_at", "webhook_id"]  # fmt: skip
    list_filter = ["status", "event_type", "endpoint"]
    list_select_related = ["endpoint"]
    search_fields = ["webhook_id"]
    ordering = ["-id"]
    fields = ["endpoint", "event_type", "webhook_id", "status", "attempts", "last_status_code",
              "response_time", "last_error", "next_attempt_at", "created_at", "delivered_at",
              "body_pretty"]  # fmt: skip
    readonly_fields = fields
    inlines = [AttemptInline]
    actions = ["resend"]
    change_role_actions = ("resend",)

    @admin.display(description="Response time", ordering="last_response_ms")
    def response_time(self, obj):
        return "-" if obj.last_response_ms is None else f"{obj.last_response_ms:,} ms"

    @admin.display(description="Body")
    def body_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.body, indent=2, ensure_ascii=False))

    @admin.action(description="Resend the selected deliveries (same webhook-id)")
    def resend(self, request, queryset):
        count = services.deliveries_resend(
            organisation_id=None
            if sees_every_organisation(request.user)
            else request.user.organisation_id,
            delivery_ids=list(queryset.values_list("pk", flat=True)),
        )
        self.message_user(request, f"{count} deliver{'y' if count == 1 else 'ies'} queued again.")

    def get_urls(self):
        urls = super().get_urls()
        resend = path(
            "<int:object_id>/resend/",
            self.admin_site.admin_view(self.resend_view),
            name="webhooks_webhookdelivery_resend",
        )
        return [resend, *urls]

    def resend_view(self, request, object_id):
        """The Resend button of a delivery's page (POST)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self._role_in(request, self.change_roles):
            raise PermissionDenied("Your role does not allow this.")
        delivery = get_object_or_404(self.get_queryset(request), pk=object_id)
        services.delivery_resend(delivery=delivery)
        messages.success(request, f"Delivery {delivery.webhook_id} queued again.")
        return redirect(reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk]))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["may_resend"] = self._role_in(request, self.change_roles)
        return super().render_change_form(request, context, add, change, form_url, obj)

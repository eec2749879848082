"""The API tokens screen: who has a token, revoke one (configurers: their organisation's users;
operations: everyone). Keys are never shown here; `create_org` prints a new one once.

Nothing on this screen answers a question about a key: the list takes no filter at all (a
`?key__startswith=` would say "1 Token" or "0 Tokens", prefix by prefix), no `_to_field`, and
no URL names a token (the primary key is the key: a change/history/delete page would answer
"no such token" or "forbidden" for a guessed key)."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from rest_framework.authtoken.models import TokenProxy

from common.admin import OrgScopedAdmin

from .tokens import token_revoke

if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)  # DRF's own screen lists every organisation's keys


@admin.register(TokenProxy)
class TokenAdmin(OrgScopedAdmin):
    org_field = "user__organisation"
    list_display = ["user", "user_role", "created"]
    list_display_links = None  # no detail page: its title would be the key
    list_select_related = ["user"]
    search_fields = ["user__username"]
    fields = ["user", "created"]
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # revoking is the action below (audited), not a bare delete

    def has_view_permission(self, request, obj=None):
        return obj is None and self._role_in(request, self.view_roles)

    def lookup_allowed(self, lookup, value, request=None):
        return False  # the list has no filters; any ?field=... answers 400

    def to_field_allowed(self, request, to_field):
        return False

    def get_object(self, request, object_id, from_field=None):
        return None  # every object URL answers as for a token that does not exist

    @admin.display(description=mark_safe('<input type="checkbox" id="action-toggle">'))
    def action_checkbox(self, obj):
        # Django labels the box with str(obj), which for a token is its key.
        label = format_html("Select the token of {}", obj.user)
        box = forms.CheckboxInput({"class": "action-select", "aria-label": label}, lambda v: False)
        return box.render(helpers.ACTION_CHECKBOX_NAME, str(obj.pk))

    @admin.display(description="Role", ordering="user__role")
    def user_role(self, obj):
        return obj.user.get_role_display()

    def response_action(self, request, queryset):
        # The boxes carry user ids (TokenProxy.pk), never keys; the action filters on the real
        # primary key (the key), so translate inside the user's own tokens.
        post = request.POST.copy()
        ids = [i for i in post.getlist(helpers.ACTION_CHECKBOX_NAME) if i.isdigit()]
        keys = queryset.filter(user_id__in=ids).values_list("key", flat=True)
        post.setlist(helpers.ACTION_CHECKBOX_NAME, list(keys))
        request.POST = post
        return super().response_action(request, queryset)

    def has_revoke_permission(self, request):
        return self._role_in(request, self.change_roles)

    @admin.action(
        description="Revoke the selected tokens (they answer 401 from now on)",
        permissions=["revoke"],
    )
    def revoke(self, request, queryset):
        users = [token.user for token in queryset.select_related("user")]
        count = sum(token_revoke(user=user, by=request.user) for user in users)
        messages.success(request, f"{count} token{'s' if count != 1 else ''} revoked.")

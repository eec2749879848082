"""Admin screens of the communications' delivery settings (reference 004, "Delivery
settings"): the organisation's senders, and each milestone's choice of them with its delivery
offset. Registered from PromotionsConfig.ready."""

from django.contrib import admin

from common.admin import InOrganisationAdmin

from .models import Channel, DeliverySettings, Sender


@admin.register(Sender)
class SenderAdmin(InOrganisationAdmin):
    list_display = ["sender_id", "name", "channel"]
    list_filter = ["channel"]
    fields = ["channel", "sender_id", "name"]


@admin.register(DeliverySettings)
class DeliverySettingsAdmin(InOrganisationAdmin):
    list_display = ["target_group", "sms_sender", "email_sender", "delivery_offset_hours"]
    list_select_related = ["target_group", "sms_sender", "email_sender"]
    fields = ["target_group", "sms_sender", "email_sender", "delivery_offset_hours"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        channel = {"sms_sender": Channel.SMS, "email_sender": Channel.EMAIL}.get(db_field.name)
        if channel and field is not None:
            field.queryset = field.queryset.filter(channel=channel)
        return field

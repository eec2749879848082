from rest_framework import generics, serializers, viewsets

from common.api import OrgScopedMixin
from common.permissions import ALL_ROLES, CONFIG_ROLES

from . import services
from .models import Organisation, Store


class OrgSettingsSerializer(serializers.ModelSerializer):
    # declared, so that "in" is read as "IN" before the region check
    default_country = serializers.CharField(
        max_length=2,
        required=False,
        allow_blank=True,
        help_text="ISO 3166 alpha-2 (e.g. IN): mobiles are stored in E.164; blank: digits only.",
    )

    class Meta:
        model = Organisation
        fields = [
            "slug",
            "name",
            "timezone",
            "award_when_target_achieved",
            "allow_return_on_target",
            "offset_days",
            "auto_create_customers",
            "default_country",
            "refuse_unknown_events",
        ]
        read_only_fields = ["slug"]
        extra_kwargs = {
            "slug": {"help_text": "The organisation's short name (`create_org SLUG`)."},
            "name": {"help_text": "The organisation's name."},
            "timezone": {"help_text": "IANA timezone (`Asia/Kolkata`): cycles start and end at its midnights."},
        }  # fmt: skip

    def validate_default_country(self, value: str) -> str:
        """ "in" is "IN"; a region the phone-number rules do not know is a 400."""
        from django.core.exceptions import ValidationError

        from .models import validate_country

        value = (value or "").strip().upper()
        try:
            validate_country(value)
        except ValidationError as exc:
            raise serializers.ValidationError(exc.messages)
        return value


class OrgSettingsView(generics.RetrieveUpdateAPIView):
    """The organisation's settings (ENABLE_AWARD_WHEN_TARGET_ACHIEVED, ALLOW_RETURN_ON_TARGET, offset days)."""

    serializer_class = OrgSettingsSerializer
    read_roles = ALL_ROLES
    write_roles = CONFIG_ROLES
    http_method_names = ["get", "patch", "head", "options"]

    def get_object(self):
        return self.request.user.organisation

    def perform_update(self, serializer):
        org = serializer.instance
        new = serializer.validated_data.get("award_when_target_achieved")
        self.affected = (
            services.award_switch_affects(organisation=org, new_value=new)
            if new is not None
            else []
        )
        services.organisation_update(organisation=org, **serializer.validated_data)

    def update(self, request, *args, **kwargs):
        """The answer adds `promotions_affected` when the award switch changed: the
        promotions whose meaning changes, with the condition doctor's warnings for each."""
        response = super().update(request, *args, **kwargs)
        if getattr(self, "affected", None):
            response.data["promotions_affected"] = self.affected
        return response


class StoreSerializer(serializers.ModelSerializer):
    class Meta:
        model = Store
        fields = ["id", "code", "name", "zone", "concept", "is_till"]
        extra_kwargs = {
            "id": {"help_text": "The store's id."},
            "code": {"help_text": "The store's code, unique in the organisation: what an activity's `store` names."},
            "name": {"help_text": "The store's name."},
            "zone": {"help_text": "The store's zone (targets can be scoped to zones)."},
            "concept": {"help_text": "The store's concept or format (targets can be scoped to concepts)."},
            "is_till": {"help_text": "A till: milestones book their awards at one (`till_code`)."},
        }  # fmt: skip

    def validate_code(self, value):
        org_id = self.context["request"].user.organisation_id
        qs = Store.objects.filter(organisation_id=org_id, code=value)
        if self.instance:
            qs = qs.exclude(pk=self.instance.pk)
        if qs.exists():
            raise serializers.ValidationError(f"A store with code {value!r} already exists.")
        return value


class StoreViewSet(OrgScopedMixin, viewsets.ModelViewSet):
    queryset = Store.objects.all()
    serializer_class = StoreSerializer
    filterset_fields = ["code", "zone", "concept", "is_till"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def perform_create(self, serializer):
        serializer.instance = services.store_create(
            organisation=self.request.user.organisation, **serializer.validated_data
        )

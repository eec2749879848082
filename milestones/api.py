from rest_framework import generics, serializers, viewsets

from . import services
from .api_common import OrgScopedMixin
from .models import Organisation, Store
from .permissions import ALL_ROLES, CONFIG_ROLES


class OrgSettingsSerializer(serializers.ModelSerializer):
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
        ]
        read_only_fields = ["slug"]


class OrgSettingsView(generics.RetrieveUpdateAPIView):
    """The organisation's settings (ENABLE_AWARD_WHEN_TARGET_ACHIEVED, ALLOW_RETURN_ON_TARGET, offset days)."""

    serializer_class = OrgSettingsSerializer
    read_roles = ALL_ROLES
    write_roles = CONFIG_ROLES
    http_method_names = ["get", "patch", "head", "options"]

    def get_object(self):
        return self.request.user.organisation

    def perform_update(self, serializer):
        services.organisation_update(organisation=serializer.instance, **serializer.validated_data)


class StoreSerializer(serializers.ModelSerializer):
    class Meta:
        model = Store
        fields = ["id", "code", "name", "zone", "concept", "is_till"]

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

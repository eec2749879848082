import factory
from rest_framework.authtoken.models import Token

from milestones.models import Organisation, Role, Store, User


class OrganisationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organisation
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"org{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())
    timezone = "UTC"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    organisation = factory.SubFactory(OrganisationFactory)
    role = Role.CONFIGURER
    is_staff = factory.LazyAttribute(lambda u: u.role in (Role.CONFIGURER, Role.MEMBER_CARE))
    password = factory.PostGenerationMethodCall("set_password", "pass-1234-word")

    @factory.post_generation
    def token(obj, create, extracted, **kwargs):
        obj.save()
        if create:
            Token.objects.get_or_create(user=obj)


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store

    organisation = factory.SubFactory(OrganisationFactory)
    code = factory.Sequence(lambda n: f"S{n}")
    name = factory.LazyAttribute(lambda s: f"Store {s.code}")


class TillFactory(StoreFactory):
    """A till of the organisation ("T1" unless told): every milestone names one. Get-or-create,
    so helpers can ask for it whether or not a test made it already."""

    class Meta:
        model = Store
        django_get_or_create = ("organisation", "code")

    code = "T1"
    is_till = True

import factory
from django.utils import timezone

from identity.models import Tenant
from machines.models import Machine, MachineTag, ResourceGroup, Subscription


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    tenant = factory.SubFactory(TenantFactory)
    display_name = factory.Sequence(lambda n: f"Subscription {n}")


class ResourceGroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ResourceGroup

    subscription = factory.SubFactory(SubscriptionFactory)
    name = factory.Sequence(lambda n: f"rg-{n}")
    location = "westeurope"


class MachineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Machine

    resource_group = factory.SubFactory(ResourceGroupFactory)
    name = factory.Sequence(lambda n: f"server-{n:05d}")
    location = factory.SelfAttribute("resource_group.location")
    os_name = "linux"
    os_type = "linux"
    os_sku = "Ubuntu 22.04"
    agent_version = "1.50.0"
    last_heartbeat_at = factory.LazyFunction(timezone.now)


class MachineTagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MachineTag

    machine = factory.SubFactory(MachineFactory)
    key = "env"
    value = "prod"

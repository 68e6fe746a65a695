"""``ServicePrincipal`` and ``DeviceCode`` belong to the identity app now (identity 0001); their tables
``onboarding_serviceprincipal`` and ``onboarding_devicecode`` stay as they are. State only: no SQL runs."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("identity", "0001_initial"),
        ("onboarding", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="ServicePrincipal"),
                migrations.DeleteModel(name="DeviceCode"),
            ],
            database_operations=[],
        ),
    ]

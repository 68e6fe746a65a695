"""``Tenant`` belongs to the identity app now (identity 0001); its table ``machines_tenant`` stays as it is, and so
does the foreign key of ``machines_subscription`` to it. State only: no SQL runs."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("identity", "0001_initial"),
        ("machines", "0007_heartbeatnonce_in_fallback"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="subscription",
                    name="tenant",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="subscriptions",
                        to="identity.tenant",
                    ),
                ),
                migrations.DeleteModel(name="Tenant"),
            ],
            database_operations=[],
        ),
    ]

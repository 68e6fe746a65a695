"""The identity app takes over three models without touching the database (issue 11, docs/decisions.md).

``Tenant`` (from machines), ``ServicePrincipal`` and ``DeviceCode`` (from onboarding) keep their tables
(``db_table`` = the old names), so this migration and its counterparts (machines 0008, onboarding 0002) change
Django's state only: an existing database keeps every row, a new one gets the same tables from the old
migrations. The dependencies order the state change after the tables exist.
"""

import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("machines", "0007_heartbeatnonce_in_fallback"),
        ("onboarding", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Tenant",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("tenant_id", models.UUIDField(default=uuid.uuid4, unique=True)),
                        ("display_name", models.CharField(default="ArcPortal", max_length=200)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                    ],
                    options={"db_table": "machines_tenant"},
                ),
                migrations.CreateModel(
                    name="ServicePrincipal",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("client_id", models.UUIDField(default=uuid.uuid4, unique=True)),
                        ("object_id", models.UUIDField(default=uuid.uuid4, unique=True)),
                        ("display_name", models.CharField(max_length=200)),
                        ("secret_hash", models.CharField(max_length=256)),
                        (
                            "role",
                            models.CharField(
                                choices=[
                                    ("Owner", "Owner"),
                                    ("Contributor", "Contributor"),
                                    ("Reader", "Reader"),
                                    ("Azure Connected Machine Onboarding", "Onboarding"),
                                ],
                                default="Azure Connected Machine Onboarding",
                                max_length=60,
                            ),
                        ),
                        ("scope", models.CharField(max_length=400)),
                        ("expires_at", models.DateTimeField()),
                        ("max_uses", models.PositiveIntegerField(blank=True, null=True)),
                        ("use_count", models.PositiveIntegerField(default=0)),
                        ("last_used_at", models.DateTimeField(blank=True, null=True)),
                        ("revoked_at", models.DateTimeField(blank=True, null=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "created_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={"db_table": "onboarding_serviceprincipal", "ordering": ["display_name"]},
                ),
                migrations.CreateModel(
                    name="DeviceCode",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("device_code_hash", models.CharField(max_length=64, unique=True)),
                        ("user_code", models.CharField(db_index=True, max_length=16)),
                        ("client_id", models.CharField(blank=True, default="", max_length=100)),
                        ("scope", models.CharField(blank=True, default="", max_length=500)),
                        (
                            "state",
                            models.CharField(
                                choices=[
                                    ("pending", "Pending"),
                                    ("approved", "Approved"),
                                    ("denied", "Denied"),
                                    ("consumed", "Consumed"),
                                ],
                                default="pending",
                                max_length=10,
                            ),
                        ),
                        ("expires_at", models.DateTimeField()),
                        ("interval_seconds", models.PositiveSmallIntegerField(default=5)),
                        ("last_polled_at", models.DateTimeField(blank=True, null=True)),
                        ("requesting_ip", models.GenericIPAddressField(blank=True, null=True)),
                        ("machine_name", models.CharField(blank=True, default="", max_length=255)),
                        ("resource_group", models.CharField(blank=True, default="", max_length=90)),
                        ("subscription_id", models.CharField(blank=True, default="", max_length=64)),
                        ("decided_at", models.DateTimeField(blank=True, null=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "decided_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={"db_table": "onboarding_devicecode", "ordering": ["-created_at"]},
                ),
            ],
            database_operations=[],
        ),
    ]

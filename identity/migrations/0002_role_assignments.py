"""Role assignments (issue 13): the table `arcportal.authz.can` reads its grants from."""

import uuid
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('identity', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='RoleAssignment',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.UUIDField(default=uuid.uuid4, unique=True)),
                ('scope', models.CharField(max_length=400)),
                ('scope_key', models.CharField(db_index=True, max_length=400)),
                ('role_definition_id', models.CharField(max_length=36)),
                ('principal_id', models.UUIDField(db_index=True)),
                ('principal_kind', models.CharField(choices=[('user', 'User'), ('app', 'App'), ('machine', 'Machine')], max_length=10)),
                ('description', models.CharField(blank=True, default='', max_length=500)),
                ('created_by', models.CharField(blank=True, default='', max_length=200)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
            options={
                'ordering': ['scope_key', 'created_at'],
                'constraints': [models.UniqueConstraint(fields=('principal_id', 'role_definition_id', 'scope_key'), name='role_assignment_unique_grant')],
            },
        ),
    ]

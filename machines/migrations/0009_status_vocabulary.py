# The status vocabulary has one definition (machines.status.VOCABULARY): choices carry its words. No SQL.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('machines', '0008_tenant_moves_to_identity'),
    ]

    operations = [
        migrations.AlterField(
            model_name='machine',
            name='status',
            field=models.CharField(choices=[('AwaitingConnection', 'Not connected yet'), ('Connected', 'Connected'), ('Disconnected', 'Offline'), ('Expired', 'Expired')], default='AwaitingConnection', max_length=20),
        ),
        migrations.AlterField(
            model_name='machinestatusevent',
            name='from_status',
            field=models.CharField(choices=[('AwaitingConnection', 'Not connected yet'), ('Connected', 'Connected'), ('Disconnected', 'Offline'), ('Expired', 'Expired')], max_length=20),
        ),
        migrations.AlterField(
            model_name='machinestatusevent',
            name='to_status',
            field=models.CharField(choices=[('AwaitingConnection', 'Not connected yet'), ('Connected', 'Connected'), ('Disconnected', 'Offline'), ('Expired', 'Expired')], max_length=20),
        ),
    ]

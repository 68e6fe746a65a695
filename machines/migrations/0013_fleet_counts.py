"""The fleet's counts summary (docs/decisions.md 122): two tables, the triggers that keep them, and the summary of the
machines already there.

The triggers are the only writers of ``machines_fleetcountdelta``: one ``-1`` row for the old dimensions and one
``+1`` row for the new, for the machine itself (``tag_key = ''``) and for each of its tags. A machine's update fires
them only when its group, location, OS or recorded status changes (the heartbeat's write changes none of them). A
tag's trigger reads its machine with ``FOR SHARE`` on PostgreSQL, so a tag written while the machine's status changes
waits for that change and counts under the status that wins. The SQL is kept here, not imported, so that this
migration means the same thing forever.
"""

from django.db import migrations, models

DELTA_COLUMNS = "resource_group_id, location, os_name, status, tag_key, tag_value, delta"

POSTGRESQL = f"""
CREATE FUNCTION machines_fleet_machine_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO machines_fleetcountdelta ({DELTA_COLUMNS})
        SELECT OLD.resource_group_id, OLD.location, OLD.os_name, OLD.status, '', '', -1
        UNION ALL
        SELECT OLD.resource_group_id, OLD.location, OLD.os_name, OLD.status, lower(t.key), t.value, -1
          FROM machines_machinetag AS t WHERE t.machine_id = OLD.id;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO machines_fleetcountdelta ({DELTA_COLUMNS})
        SELECT NEW.resource_group_id, NEW.location, NEW.os_name, NEW.status, '', '', 1
        UNION ALL
        SELECT NEW.resource_group_id, NEW.location, NEW.os_name, NEW.status, lower(t.key), t.value, 1
          FROM machines_machinetag AS t WHERE t.machine_id = NEW.id;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION machines_fleet_tag_delta() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    m machines_machine%ROWTYPE;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        SELECT * INTO m FROM machines_machine WHERE id = OLD.machine_id FOR SHARE;
        IF FOUND THEN
            INSERT INTO machines_fleetcountdelta ({DELTA_COLUMNS})
            VALUES (m.resource_group_id, m.location, m.os_name, m.status, lower(OLD.key), OLD.value, -1);
        END IF;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        SELECT * INTO m FROM machines_machine WHERE id = NEW.machine_id FOR SHARE;
        IF FOUND THEN
            INSERT INTO machines_fleetcountdelta ({DELTA_COLUMNS})
            VALUES (m.resource_group_id, m.location, m.os_name, m.status, lower(NEW.key), NEW.value, 1);
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER machines_fleet_machine_insert_delete AFTER INSERT OR DELETE ON machines_machine
    FOR EACH ROW EXECUTE FUNCTION machines_fleet_machine_delta();
CREATE TRIGGER machines_fleet_machine_update
    AFTER UPDATE OF resource_group_id, location, os_name, status ON machines_machine
    FOR EACH ROW WHEN (OLD.resource_group_id IS DISTINCT FROM NEW.resource_group_id
                       OR OLD.location IS DISTINCT FROM NEW.location
                       OR OLD.os_name IS DISTINCT FROM NEW.os_name
                       OR OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION machines_fleet_machine_delta();
CREATE TRIGGER machines_fleet_tag AFTER INSERT OR DELETE OR UPDATE OF machine_id, key, value ON machines_machinetag
    FOR EACH ROW EXECUTE FUNCTION machines_fleet_tag_delta();
"""

POSTGRESQL_DROP = """
DROP TRIGGER IF EXISTS machines_fleet_tag ON machines_machinetag;
DROP TRIGGER IF EXISTS machines_fleet_machine_update ON machines_machine;
DROP TRIGGER IF EXISTS machines_fleet_machine_insert_delete ON machines_machine;
DROP FUNCTION IF EXISTS machines_fleet_tag_delta();
DROP FUNCTION IF EXISTS machines_fleet_machine_delta();
"""


def _sqlite_machine(side: str, sign: int) -> str:
    return f"""
    INSERT INTO machines_fleetcountdelta ({DELTA_COLUMNS})
    VALUES ({side}.resource_group_id, {side}.location, {side}.os_name, {side}.status, '', '', {sign});
    INSERT INTO machines_fleetcountdelta ({DELTA_COLUMNS})
    SELECT {side}.resource_group_id, {side}.location, {side}.os_name, {side}.status, lower(t.key), t.value, {sign}
      FROM machines_machinetag AS t WHERE t.machine_id = {side}.id;"""


def _sqlite_tag(side: str, sign: int) -> str:
    return f"""
    INSERT INTO machines_fleetcountdelta ({DELTA_COLUMNS})
    SELECT m.resource_group_id, m.location, m.os_name, m.status, lower({side}.key), {side}.value, {sign}
      FROM machines_machine AS m WHERE m.id = {side}.machine_id;"""


SQLITE = [
    f"CREATE TRIGGER machines_fleet_machine_insert AFTER INSERT ON machines_machine BEGIN {_sqlite_machine('NEW', 1)} END",
    f"CREATE TRIGGER machines_fleet_machine_delete AFTER DELETE ON machines_machine BEGIN {_sqlite_machine('OLD', -1)} END",
    "CREATE TRIGGER machines_fleet_machine_update AFTER UPDATE OF resource_group_id, location, os_name, status"
    " ON machines_machine WHEN OLD.resource_group_id IS NOT NEW.resource_group_id OR OLD.location IS NOT NEW.location"
    " OR OLD.os_name IS NOT NEW.os_name OR OLD.status IS NOT NEW.status"
    f" BEGIN {_sqlite_machine('OLD', -1)} {_sqlite_machine('NEW', 1)} END",
    f"CREATE TRIGGER machines_fleet_tag_insert AFTER INSERT ON machines_machinetag BEGIN {_sqlite_tag('NEW', 1)} END",
    f"CREATE TRIGGER machines_fleet_tag_delete AFTER DELETE ON machines_machinetag BEGIN {_sqlite_tag('OLD', -1)} END",
    "CREATE TRIGGER machines_fleet_tag_update AFTER UPDATE OF machine_id, key, value ON machines_machinetag"
    f" BEGIN {_sqlite_tag('OLD', -1)} {_sqlite_tag('NEW', 1)} END",
]
SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS {name}"
    for name in (
        "machines_fleet_machine_insert",
        "machines_fleet_machine_delete",
        "machines_fleet_machine_update",
        "machines_fleet_tag_insert",
        "machines_fleet_tag_delete",
        "machines_fleet_tag_update",
    )
]

# The machines already there, folded at once (the same rows the triggers would have written).
FILL = """
INSERT INTO machines_fleetcount (resource_group_id, location, os_name, status, tag_key, tag_value, count)
SELECT resource_group_id, location, os_name, status, '', '', COUNT(*) FROM machines_machine
 GROUP BY resource_group_id, location, os_name, status
UNION ALL
SELECT m.resource_group_id, m.location, m.os_name, m.status, lower(t.key), t.value, COUNT(*)
  FROM machines_machinetag AS t JOIN machines_machine AS m ON m.id = t.machine_id
 GROUP BY m.resource_group_id, m.location, m.os_name, m.status, lower(t.key), t.value
"""


def install(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    statements = {"postgresql": [POSTGRESQL], "sqlite": SQLITE}.get(vendor)
    if statements is None:
        return  # another database: no summary, the list counts with COUNT (machines.fleet_counts.available)
    with schema_editor.connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
        cursor.execute(FILL)


def uninstall(apps, schema_editor):
    statements = {"postgresql": [POSTGRESQL_DROP], "sqlite": SQLITE_DROP}.get(schema_editor.connection.vendor, [])
    with schema_editor.connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ('machines', '0012_list_count_indexes'),
    ]

    operations = [
        migrations.CreateModel(
            name='FleetCount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('resource_group_id', models.BigIntegerField()),
                ('location', models.CharField(max_length=40)),
                ('os_name', models.CharField(max_length=20)),
                ('status', models.CharField(max_length=20)),
                ('tag_key', models.CharField(max_length=512)),
                ('tag_value', models.CharField(max_length=256)),
                ('count', models.BigIntegerField()),
            ],
            options={
                'indexes': [models.Index(fields=['tag_key', 'tag_value'], name='fleet_count_tag_idx')],
                'constraints': [models.UniqueConstraint(fields=('resource_group_id', 'location', 'os_name', 'status', 'tag_key', 'tag_value'), name='fleet_count_dimensions_unique')],
            },
        ),
        migrations.CreateModel(
            name='FleetCountDelta',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('resource_group_id', models.BigIntegerField()),
                ('location', models.CharField(max_length=40)),
                ('os_name', models.CharField(max_length=20)),
                ('status', models.CharField(max_length=20)),
                ('tag_key', models.CharField(max_length=512)),
                ('tag_value', models.CharField(max_length=256)),
                ('delta', models.IntegerField()),
            ],
            options={
                'indexes': [models.Index(fields=['tag_key', 'tag_value'], name='fleet_count_delta_tag_idx')],
            },
        ),
        migrations.RunPython(install, uninstall),
    ]

"""The daily rollups of the KPIs (`maintenance_site.analytics.rollups`): the sums per organisation and local day, the
state of an organisation's rollups, and the change records the triggers write (the triggers themselves are installed
after every migrate by `maintenance_site.analytics.triggers`, as they sit on the tables of apps above this one)."""

import django.db.models.deletion
import django.db.models.functions.datetime
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("tenancy", "0004_language_preferences"),
    ]

    operations = [
        migrations.CreateModel(
            name="RollupDirty",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("organization_id", models.BigIntegerField(db_index=True)),
                ("since", models.DateTimeField()),
                ("until", models.DateTimeField()),
                ("created_at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
            ],
        ),
        migrations.CreateModel(
            name="RollupState",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("time_zone", models.CharField(max_length=64)),
                ("rolled_from", models.DateField()),
                ("rolled_through", models.DateField()),
                ("rolled_until", models.DateTimeField()),
                ("refreshed_at", models.DateTimeField()),
                (
                    "organization",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="tenancy.organization"
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="DailyRollup",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("source", models.CharField(max_length=40)),
                ("day", models.DateField()),
                ("measures", models.JSONField(default=dict)),
                ("computed_at", models.DateTimeField()),
                (
                    "organization",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="tenancy.organization"
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("organization", "source", "day"), name="analytics_rollup_one_per_day"
                    )
                ],
            },
        ),
    ]

"""The daily rollups per group of a breakdown (asset type, location, priority) and their samples (the sorted values
behind an exact percentile). The rollups already kept have `layout` 0: the next refresh rebuilds them
(`maintenance_site.analytics.rollups.LAYOUT`)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0001_daily_rollups"),
        ("tenancy", "0004_language_preferences"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="dailyrollup",
            name="analytics_rollup_one_per_day",
        ),
        migrations.AddField(
            model_name="dailyrollup",
            name="breakdown",
            field=models.CharField(blank=True, default="", max_length=20),
        ),
        migrations.AddField(
            model_name="dailyrollup",
            name="group_key",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="dailyrollup",
            name="samples",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="rollupstate",
            name="layout",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddConstraint(
            model_name="dailyrollup",
            constraint=models.UniqueConstraint(
                fields=("organization", "source", "breakdown", "day", "group_key"),
                name="analytics_rollup_one_per_day_group",
            ),
        ),
    ]

"""The apps depend one way, in their models and migrations too (the imports: `lint-imports`, pyproject.toml).

Order: maintenance_site core -> assets -> workorders -> {inventory, sla} -> scheduling -> scenarios. An app may refer
to its own models and those of the apps before it (Django's and third-party apps included); inventory and sla know
nothing of each other. Checked here:

- every relation of every installed model (foreign keys, one-to-one, many-to-many, those of the generated history
  and through models too), whether written as a class or as a string ("workorders.WorkOrder", resolved by Django);
- every migration's `dependencies` and `run_before`, and the models its operations point at;
- that no import hides inside a function (where it would dodge a cycle): an `AppConfig.ready()` may import what
  needs the app registry, and an import marked `# optional` or `# heavy` (with why) may wait until it is used.

A generic foreign key names no model (its target is a row of any table): it escapes this check, so the test lists
any that appears, to be looked at.
"""

import ast
import sys
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.db import migrations, models
from django.db.migrations.loader import MigrationLoader
from django.test.utils import isolate_apps

ORDER = {"maintenance_site": 0, "assets": 1, "workorders": 2, "inventory": 3, "sla": 3, "scheduling": 4, "scenarios": 5}


def layer(app_label: str) -> str | None:
    """The project app an app label belongs to (maintenance_site's sub-apps are its core); None for Django's own
    and third-party apps, which any app may use."""
    try:
        package = apps.get_app_config(app_label).name.split(".")[0]
    except LookupError:
        return None
    return package if package in ORDER else None


def allowed(from_layer: str | None, to_layer: str | None) -> bool:
    """Whether something of `from_layer` may refer to something of `to_layer`."""
    if from_layer is None or to_layer is None or from_layer == to_layer:
        return True
    return ORDER[to_layer] < ORDER[from_layer]


def relation_breaks(models) -> list[str]:
    breaks = []
    for model in models:
        source = layer(model._meta.app_label)
        for field in model._meta.get_fields(include_hidden=True):
            if not field.is_relation or (field.auto_created and not field.concrete):
                continue  # not a relation, or the reverse side of one declared elsewhere
            target = field.related_model
            if target is None:
                continue  # a generic foreign key: see test_no_generic_foreign_key_escapes_the_check
            if not allowed(source, layer(target._meta.app_label)):
                breaks.append(f"{model._meta.label}.{field.name} -> {target._meta.label}")
    return breaks


def _referenced_labels(operation) -> set[str]:
    """The app labels of the models a migration operation's fields point at."""
    if isinstance(operation, migrations.SeparateDatabaseAndState):
        return set().union(
            *(_referenced_labels(inner) for inner in [*operation.state_operations, *operation.database_operations])
        )
    fields = []
    if isinstance(operation, migrations.CreateModel):
        fields = [field for _name, field in operation.fields]
    elif isinstance(operation, migrations.AddField | migrations.AlterField):
        fields = [operation.field]
    labels = set()
    for field in fields:
        remote = getattr(field, "remote_field", None)
        target = getattr(remote, "model", None)
        if isinstance(target, str) and "." in target:
            labels.add(target.split(".")[0])
        elif target is not None and hasattr(target, "_meta"):
            labels.add(target._meta.app_label)
    return labels


def migration_breaks(disk_migrations) -> list[str]:
    breaks = []
    for (app_label, name), migration in sorted(disk_migrations.items()):
        source = layer(app_label)
        for dep_label, dep_name in migration.dependencies:
            if not allowed(source, layer(dep_label)):
                breaks.append(f"{app_label}.{name} depends on {dep_label}.{dep_name}")
        for later_label, later_name in getattr(migration, "run_before", []):
            if not allowed(layer(later_label), source):
                breaks.append(f"{app_label}.{name} runs before {later_label}.{later_name}")
        for operation in migration.operations:
            for target_label in _referenced_labels(operation):
                if not allowed(source, layer(target_label)):
                    breaks.append(f"{app_label}.{name}: {operation.describe()} refers to {target_label}")
    return breaks


def test_every_project_app_has_a_place_in_the_order():
    base, installed = str(settings.BASE_DIR), (sys.prefix, sys.base_prefix)  # the virtualenv may sit in the project
    ours = {
        config.name.split(".")[0]
        for config in apps.get_app_configs()
        if config.path.startswith(base) and not config.path.startswith(installed)
    }
    assert "workorders" in ours
    assert ours <= set(ORDER), f"apps without a place in the order: {sorted(ours - set(ORDER))}"


def test_model_relations_follow_the_order():
    breaks = relation_breaks(apps.get_models(include_auto_created=True))
    assert not breaks, "model relations against the apps' order:\n" + "\n".join(breaks)


def test_migrations_follow_the_order():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    breaks = migration_breaks(loader.disk_migrations)
    assert not breaks, "migrations against the apps' order:\n" + "\n".join(breaks)


def test_no_generic_foreign_key_escapes_the_check():
    generic = [
        f"{model._meta.label}.{field.name}"
        for model in apps.get_models(include_auto_created=True)
        if layer(model._meta.app_label)
        for field in model._meta.get_fields(include_hidden=True)
        if field.is_relation and not field.auto_created and field.related_model is None
    ]
    assert generic == [], "generic relations (their target escapes the order check): " + ", ".join(generic)


def test_the_check_sees_a_relation_or_migration_against_the_order():
    """A downtime pointing at a work order again, written as a string, and an assets migration depending on
    workorders (the very cycle this check exists to keep out) are both caught; the other way round is fine."""
    with isolate_apps("assets", "workorders"):  # a registry of its own: nothing global changes

        class WorkOrder(models.Model):  # noqa: DJ008
            class Meta:
                app_label = "workorders"

        class Downtime(models.Model):  # noqa: DJ008
            work_order = models.ForeignKey("workorders.WorkOrder", on_delete=models.CASCADE)

            class Meta:
                app_label = "assets"

        class Link(models.Model):  # noqa: DJ008
            downtime = models.OneToOneField(Downtime, on_delete=models.CASCADE)

            class Meta:
                app_label = "workorders"

        assert relation_breaks([WorkOrder, Downtime, Link]) == ["assets.Downtime.work_order -> workorders.WorkOrder"]

    back = migrations.Migration("0009_back", "assets")
    back.dependencies = [("workorders", "0001_initial"), ("tenancy", "0001_initial")]
    back.operations = [
        migrations.AddField("downtime", "order", models.ForeignKey("workorders.workorder", on_delete=models.CASCADE))
    ]
    fine = migrations.Migration("0009_fine", "workorders")
    fine.dependencies = [("assets", "0001_initial")]
    assert migration_breaks({("assets", "0009_back"): back, ("workorders", "0009_fine"): fine}) == [
        "assets.0009_back depends on workorders.0001_initial",
        "assets.0009_back: Add field order to downtime refers to workorders",
    ]


def hidden_imports(root: Path, packages) -> list[str]:
    """Imports inside functions, except in an AppConfig's ready() and those marked optional or heavy."""
    found = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            if "/migrations/" in relative:
                continue
            source = path.read_text(encoding="utf-8")
            lines = source.splitlines()
            for function in ast.walk(ast.parse(source)):
                if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                if function.name == "ready" and path.name == "apps.py":
                    continue
                for node in ast.walk(function):
                    if not isinstance(node, ast.Import | ast.ImportFrom):
                        continue
                    module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                    module = "." * getattr(node, "level", 0) + (module or "")
                    comment = lines[node.lineno - 1].partition("#")[2].lower()
                    if "optional" in comment or "heavy" in comment:
                        continue
                    found.append(f"{relative}:{node.lineno} imports {module} inside {function.name}()")
    return found


def test_no_import_hides_in_a_function():
    hidden = hidden_imports(Path(settings.BASE_DIR), ORDER)
    assert not hidden, (
        "imports inside functions (move them to the module's top; a cycle means the dependency runs the wrong "
        "way: see maintenance_site/hooks.py):\n" + "\n".join(hidden)
    )

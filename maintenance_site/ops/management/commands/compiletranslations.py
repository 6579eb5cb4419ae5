"""`manage.py compiletranslations [--force]`: compile the committed .po catalogues to .mo with Babel (no gettext
binaries needed); Django's `compilemessages` does the same where Debian's gettext is installed."""

from django.core.management.base import BaseCommand

from maintenance_site.translations import LOCALE_DIR, catalogues, compile_catalogues


class Command(BaseCommand):
    help = "Compile the translation catalogues (.po → .mo) that are missing or older than their .po."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="compile every catalogue, even the fresh ones")

    def handle(self, *args, force=False, **options):
        written = compile_catalogues(force=force)
        where = LOCALE_DIR.relative_to(LOCALE_DIR.parents[1])
        self.stdout.write(f"{len(written)} of {len(catalogues())} catalogue(s) compiled under {where}.")

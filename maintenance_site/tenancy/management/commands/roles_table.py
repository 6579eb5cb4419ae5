from django.core.management.base import BaseCommand

from maintenance_site.tenancy.roles import markdown_table


class Command(BaseCommand):
    help = "Print the role × action table as Markdown (the README's copy comes from here)."

    def handle(self, **options):
        self.stdout.write(markdown_table())

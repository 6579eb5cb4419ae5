"""Django format modules (settings.FORMAT_MODULE_PATH): the project's one date/time format (maintenance_site.formats)
for the languages it speaks."""

"""Capacity (issue 24): how many hours each member can work on a day, against the work planned for them.

    models.py    the weekly working-hours pattern (the organisation's, and a member's own) and time off
    hours.py     the arithmetic: a pattern's hours on a local day (daylight-saving correct) less time off, and the
                 planned hours (the estimates of the orders planned to start that day), per person and day
    services.py  the only writers of patterns and time off
    admin.py, api.py

It lives with the work orders because planned hours are theirs and the dispatch board (scheduling/planning) reads
both; memberships (maintenance_site.tenancy) stay free of it, and only name the people.
"""

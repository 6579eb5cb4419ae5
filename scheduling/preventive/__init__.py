"""Preventive maintenance: schedules (what they cover, when they are due, the work order they become) and the
generator that turns each due occurrence into exactly one work order.

    models.py          schedules, template parts, occurrences, generation runs, calendar feeds (and their rules)
    occurrences.py     when a calendar or interval schedule is due, in a time zone
    targets.py         what schedules cover (assets, time zones), read in bulk
    meter_triggers.py  meter-based triggers, from the readings
    planning.py        what a generation pass will insert (misfires, skip-if-open)
    generation.py      the pass itself: occurrences, work orders, checklists, reservations, SLA clocks, events
    services.py        the only writers of schedules and calendar feeds
    reports.py         forecast, statistics, the trigger in words, next due dates
    admin.py, api.py, ical.py, demo.py
"""

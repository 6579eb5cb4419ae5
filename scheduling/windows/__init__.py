"""Maintenance windows and maintenance mode: periods in which the whole system, a location or some assets are
under maintenance (single or recurring), and the per-organisation (or platform-wide) mode that refuses changes
while a system window runs or an operator switched it on.

    models.py        windows, asset states, the mode rows, the calendar feed's token
    scope.py         what a window touches (footprints over the organisation's tree)
    series.py        recurring windows: the rule and the occurrences created ahead
    overlap.py       the overlap check (409 unless an emergency)
    mode.py          maintenance mode: the lock, the state the gates read, the manual switch
    lifecycle.py     starting and ending windows, marking and giving back assets
    notifications.py what people are told, event payloads
    services.py      the only writers of windows
    tick.py          what beat runs: start, end, miss, remind, reconcile, prune
    reports.py       metrics, windows that fit a work order, schedule and history
    admin.py, api.py, ical.py, demo.py, middleware.py, permissions.py, context_processors.py
"""

"""Planning (issue 24): the planner's calendar and the dispatch board, over what scheduling and the work orders know.

    calendar.py  the items of a period: preventive occurrences not yet generated (the forecast), maintenance
                 windows and work orders with a planned start; filters by location, team and assignee
    board.py     the dispatch board: open work by person (and unassigned) and day, with planned hours against
                 capacity (workorders.capacity), overdue and SLA-at-risk marks
    moves.py     what a drag does: a local day and time turned into an instant (daylight-saving rule of
                 maintenance_site.recurrence) and handed to workorders.services.schedule / dispatch
    views.py     the admin pages (/admin/planning/calendar/, /admin/planning/board/) and their move endpoint
    api.py       /api/v1/planning/calendar/ and /api/v1/planning/board/

Both pages are server-rendered HTML with one small script of ours (scheduling/static/planning/planning.js:
native drag and drop, fetch, the event socket): no calendar library arrives as a Python package that is kept up
(the front-end dependency rule forbids copying one in or an npm step), and a month / week / day grid of a few
hundred items is a table the server draws in the organisation's time zone, which also keeps the daylight-saving
arithmetic on the server, in one place.
"""

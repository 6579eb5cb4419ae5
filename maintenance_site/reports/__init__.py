"""The four reports (issue 22): status, performance, quality and audit, for an organisation or a location subtree and
a period; as an HTML page in the admin, CSV and PDF; generated in the background, archived, and sent on schedules.

- `registry.py`: the sections of each report. The apps register theirs from `AppConfig.ready()` (status: open
  work, backlog, overdue and assets down from `workorders`, low stock from `inventory`, windows in progress from
  `scheduling`; quality: SLA breaches from `sla`), so this package imports no app. The performance and quality
  KPIs come from `maintenance_site.analytics` (`sections.py`), the audit trail from simple-history (`audit.py`).
- `content.py`: a report's content (blocks of columns and rows, with a chart where one helps), built section by
  section with progress.
- `render.py` (HTML fragment, CSV) and `pdf.py` (ReportLab): the formats.
- `models.py`, `services.py`: the archive (`GeneratedReport`), the schedules (`ReportSchedule`) and their sends
  (`ScheduledSend`, one row per schedule and period: sent once); `tasks.py`, `api.py`, `admin.py`: the edges.
"""

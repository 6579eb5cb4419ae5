"""SLA clocks of work orders. The work-order services call the three hooks below at the moments a clock
must start, pause, resume, stop or be re-targeted; the SLA work fills them in."""


def on_work_order_created(work_order) -> None:
    """A new order: start its clock under the policy that matches it best."""


def on_work_order_transition(work_order, action: str, previous_status: str) -> None:
    """Lifecycle change: pause on hold, resume, stop when met, resume on reopen."""


def on_work_order_edited(work_order, changed_fields: list[str], actor) -> None:
    """A person changed priority, type or asset: re-evaluate which policy applies."""

"""Domain errors: what a service raises when it refuses, with a message a person can act on.

The API turns them into JSON with their status code, the admin into a message, commands into a
non-zero exit.
"""


class DomainError(Exception):
    status_code = 400
    default_code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, fields: dict | None = None, **extra):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.fields = fields or {}
        self.extra = extra


class InvalidInput(DomainError):
    status_code = 400
    default_code = "invalid"


class PermissionDeniedError(DomainError):
    status_code = 403
    default_code = "permission_denied"


class NotFound(DomainError):
    status_code = 404
    default_code = "not_found"


class Conflict(DomainError):
    status_code = 409
    default_code = "conflict"


class PreconditionFailed(DomainError):
    status_code = 412
    default_code = "precondition_failed"


class Unprocessable(DomainError):
    status_code = 422
    default_code = "unprocessable"


class ServiceUnavailable(DomainError):
    """A dependency the request needs (Redis, the broker) is unreachable: worth retrying later."""

    status_code = 503
    default_code = "unavailable"

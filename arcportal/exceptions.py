"""Domain errors raised by services. Views and the ARM error handler translate them to responses."""


class ApplicationError(Exception):
    """Base class: a rule of the domain was broken. ``code`` is the ARM error code used on the API."""

    code = "BadRequest"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, target: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.target = target


class Invalid(ApplicationError):
    code = "InvalidRequestContent"
    status = 400


class NotFound(ApplicationError):
    code = "ResourceNotFound"
    status = 404


class Conflict(ApplicationError):
    code = "Conflict"
    status = 409


class Forbidden(ApplicationError):
    code = "AuthorizationFailed"
    status = 403

"""DRF exception handler → ARM error bodies (filled in by the ARM API work)."""

from rest_framework.response import Response
from rest_framework.views import exception_handler


def arm_exception_handler(exc, context):
    response = exception_handler(exc, context)
    if response is None:
        return None
    return Response({"error": {"code": exc.__class__.__name__, "message": str(exc)}}, status=response.status_code)

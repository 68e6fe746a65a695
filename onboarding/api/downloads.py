"""Public downloads: the portal CA certificate. Scripts fetch it, check its SHA-256 fingerprint, then trust it."""

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from onboarding import pki


@require_GET
def ca_certificate_download(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(pki.ca_certificate_pem(), content_type="application/x-pem-file")
    response["Content-Disposition"] = 'inline; filename="ca.pem"'
    response["X-CA-SHA256-Fingerprint"] = pki.ca_fingerprint_sha256()
    return response

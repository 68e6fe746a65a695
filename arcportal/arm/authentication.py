"""Bearer-token authentication for the ARM plane (filled in by the ARM API work)."""

from rest_framework.authentication import BaseAuthentication


class BearerTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        return None

    def authenticate_header(self, request):
        return 'Bearer error="invalid_token"'

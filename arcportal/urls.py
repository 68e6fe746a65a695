"""One host, several planes (DESIGN.md §5): portal pages, ARM API, identity, agent plane, downloads.

The composition root: the one module of the core that names every app (docs/architecture.md).
"""

from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from arcportal import views
from arcportal.arm import metadata
from identity.views_signin import SignInView

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    # The cloud's endpoints for `az cloud register` (also as `//metadata/…`: the CLI appends to a URL ending in /).
    re_path(r"^/?metadata/endpoints/?$", metadata.metadata_endpoints, name="metadata-endpoints"),
    path("accounts/login/", SignInView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Portal pages (session login).
    path("", include("machines.urls")),
    path("", include("machines.webhook_urls")),
    path("", include("onboarding.urls")),
    # ARM plane, identity endpoints, agent plane and downloads (their own authentication).
    path("", include("machines.api.urls")),
    path("", include("machines.locks.urls")),
    path("", include("machines.activitylog.urls")),
    path("", include("identity.urls")),
    path("", include("agentplane.urls")),
    path("", include("onboarding.download_urls")),
]

handler400 = "arcportal.views.bad_request"
handler403 = "arcportal.views.permission_denied"
handler404 = "arcportal.views.not_found"
handler500 = "arcportal.views.server_error"

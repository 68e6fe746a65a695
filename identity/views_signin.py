"""The portal's sign-in page: Django's ``LoginView`` with failed attempts limited per IP and per user name.

Failed sign-ins are counted by ``arcportal.ratelimits`` (the same IP bucket as the token endpoint's). Once a limit is
reached the page answers 429 with ``Retry-After`` and says when to try again, before any password is checked; when
the limiter's cache does not answer it answers 503 and checks no password (fail closed).
"""

from __future__ import annotations

from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView

from arcportal import ratelimits

UNAVAILABLE = (
    "Sign-in is unavailable for a moment: the service that limits sign-in attempts does not answer. "
    "Try again in a minute."
)


class SignInView(LoginView):
    def _buckets(self) -> list[ratelimits.Bucket]:
        username = self.request.POST.get("username", "")
        return ratelimits.signin_buckets(self.request, account=f"user:{username}")

    def post(self, request, *args, **kwargs):
        try:
            ratelimits.limits_check(request, self._buckets())
        except ratelimits.RateLimited as exc:
            message = (
                f"Too many sign-in attempts for this user name or from this address. Try again in "
                f"{_duration(exc.retry_after)}."
            )
            return self._refused(message, exc.status, exc.retry_after)
        except ratelimits.LimiterUnavailable as exc:
            return self._refused(UNAVAILABLE, exc.status, exc.retry_after)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        try:
            ratelimits.limits_count(self.request, self._buckets())
        except ratelimits.LimiterUnavailable as exc:
            return self._refused(UNAVAILABLE, exc.status, exc.retry_after)
        return super().form_invalid(form)

    def _refused(self, message: str, status: int, retry_after: int):
        form = AuthenticationForm(self.request, initial={"username": self.request.POST.get("username", "")[:150]})
        response = self.render_to_response(self.get_context_data(form=form, signin_refused=message), status=status)
        response["Retry-After"] = str(retry_after)
        return response


def _duration(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{round(seconds / 60)} minutes"

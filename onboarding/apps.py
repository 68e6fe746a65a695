from django.apps import AppConfig


class OnboardingConfig(AppConfig):
    name = "onboarding"
    verbose_name = "Onboarding"

    def ready(self) -> None:
        from arcportal import bootstrap_steps
        from onboarding import pki

        if pki.ensure_pki not in bootstrap_steps.STEPS:
            bootstrap_steps.register(pki.ensure_pki)

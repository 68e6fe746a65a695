from django.apps import AppConfig


class OnboardingConfig(AppConfig):
    name = "onboarding"
    verbose_name = "Onboarding"

    def ready(self) -> None:
        from machines.panels import machine_panel_register
        from onboarding.selectors import machine_onboarding_panel

        machine_panel_register(machine_onboarding_panel)  # the Overview's "Connected Machine agent" panel

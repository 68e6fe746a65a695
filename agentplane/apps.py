from django.apps import AppConfig


class AgentPlaneConfig(AppConfig):
    name = "agentplane"
    verbose_name = "Agent plane"

"""ArcPortal's reference agent (command ``azcmagent``). Importable without Django."""

__version__ = "1.50.0"

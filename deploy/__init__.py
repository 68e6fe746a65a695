"""Deployment files (nginx site, systemd units, environment template) and the renderer of the nginx site
(``python3 -m deploy.nginx``); see docs/deployment.md."""

"""``azcmagent logs``: the agent's logs, settings and ``show`` output in one zip file (never the private key)."""

from __future__ import annotations

import argparse
import socket
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from azcmagent import config, errors
from azcmagent.commands.show import show_fields


def cmd_logs(args: argparse.Namespace) -> int:
    paths = config.paths()
    stamp = datetime.now(UTC).strftime("%y%m%dT%H%M%S")
    output = Path(args.output or f"azcmagent-{stamp}-{socket.gethostname()}.zip")
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        if paths.logs.exists():
            for file in sorted(paths.logs.iterdir()):
                if file.is_file():
                    archive.write(file, f"log/{file.name}")
        for file in (paths.agentconfig, paths.localconfig, paths.state):
            if file.exists():
                archive.write(file, file.name)
        archive.writestr("show.txt", "\n".join(f"{label:<40}: {value}" for label, _, value in show_fields()))
    print(f"Logs collected in {output.resolve()}")
    return errors.OK

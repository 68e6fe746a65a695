"""One module per ``azcmagent`` command (``cli.py`` parses the command line and dispatches here).

Each ``cmd_<name>(args) -> int`` returns the process exit code or raises ``AgentError``; ``common`` holds what
several commands share (where the portal is, the proxy, the ARM sign-in).
"""

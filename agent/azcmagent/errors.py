"""Exit codes and ``AZCM00NN`` messages (ARC-REFERENCE.md §2.7)."""

from __future__ import annotations

OK = 0
DEFAULT = 1
UNKNOWN_REGION = 20
INVALID_ARGUMENTS = 23
NETWORK_ERROR = 26
TOKEN_FAILED = 41
CREATE_FAILED = 42
DELETE_FAILED = 43
RESOURCE_EXISTS = 44
DISCONNECT_FAILED = 63
ALREADY_CONNECTED = 67
LOCAL_CONFIG_UPDATE = 69
LOCAL_CONFIG_READ = 70
CERT_FROM_HIS = 81
RESOURCE_NAME = 102

TITLES = {
    DEFAULT: "Default error",
    UNKNOWN_REGION: "Unknown region",
    INVALID_ARGUMENTS: "Invalid parameter",
    NETWORK_ERROR: "Network Error",
    TOKEN_FAILED: "Failed to obtain an access token",
    CREATE_FAILED: "Failed To Create Resource",
    DELETE_FAILED: "Failed To Delete Resource",
    RESOURCE_EXISTS: "A resource with the same name already exists",
    DISCONNECT_FAILED: "Failed to disconnect",
    ALREADY_CONNECTED: "The machine is already connected",
    LOCAL_CONFIG_UPDATE: "Failed to update the local configuration",
    LOCAL_CONFIG_READ: "Failed to read the local configuration",
    CERT_FROM_HIS: "Failed to obtain the identity certificate from HIS",
    RESOURCE_NAME: "Failed to generate a resource name",
}


class AgentError(Exception):
    """Ends a command with ``exit_code`` after logging ``AZCM00NN: <title>`` and the detail."""

    def __init__(self, exit_code: int, detail: str) -> None:
        super().__init__(detail)
        self.exit_code = exit_code
        self.detail = detail

    @property
    def azcm(self) -> str:
        return f"AZCM{self.exit_code:04d}"

    @property
    def title(self) -> str:
        return TITLES.get(self.exit_code, "Error")

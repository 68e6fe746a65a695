"""The generated scripts: goldens, bash -n + shellcheck, a real run of the Linux script in a sandbox with stub tools,
and the PowerShell script's syntax tree (tree-sitter) showing every user value inside a verbatim string literal.

Regenerate the goldens after an intended change with ``UPDATE_GOLDEN=1 pytest tests/onboarding/test_scripts.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import tree_sitter
import tree_sitter_powershell
from azcmagent.tags import parse_tags
from django.core.cache import cache

from identity import pki
from onboarding.quoting import PS_SINGLE_QUOTES, format_tags
from onboarding.scripts import ScriptOptions, render_onboarding_script

GOLDEN_DIR = Path(__file__).parent / "golden"
CORRELATION_ID = "8d6f4a5e-1c2b-4e3f-9a8b-7c6d5e4f3a2b"
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
SUBSCRIPTION_ID = "00000000-1111-2222-3333-444444444444"
SP_ID = "5c1e4c2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b"
FINGERPRINT = "3f" * 32
BASE_URL = "https://arcportal.example.com:8443"
TAGS = {"Datacenter": "CH01", "City": "Baar", "StateOrDistrict": "Zug", "Owner": "Shared Infrastructure Services"}
SHELLCHECK = "/usr/bin/shellcheck"

HOSTILE = [
    "'; rm -rf ~; '",
    "$(touch /tmp/pwned-MARK)",
    "`touch /tmp/pwned-MARK-bt`",
    "`whoami`",
    '"; Remove-Item C:\\ -Recurse; "',
    "$env:PATH",
    "line one\nline two; touch /tmp/pwned-MARK-nl",
    "Zürich – 東京 ‘quoted’ ‚low‛ \\ \t tab",
    "a,b=c,'d'",
]


def variant_name(os_name: str, scale: bool, proxy: bool, tags: bool) -> str:
    parts = [os_name, "scale" if scale else "single"]
    if proxy:
        parts.append("proxy")
    if tags:
        parts.append("tags")
    return "-".join(parts) + (".sh" if os_name == "linux" else ".ps1")


VARIANTS = [
    (os_name, scale, proxy, tags)
    for os_name in ("linux", "windows")
    for scale in (False, True)
    for proxy in (False, True)
    for tags in (False, True)
]


def options_for(os_name, scale, proxy, with_tags, **overrides) -> ScriptOptions:
    values = {
        "os": os_name,
        "subscription_id": SUBSCRIPTION_ID,
        "resource_group": "arc-servers-rg",
        "location": "westeurope",
        "proxy_url": "http://proxy.contoso.local:3128" if proxy else "",
        "tags": TAGS if with_tags else {},
        "service_principal_id": SP_ID if scale else "",
        "service_principal_secret": "",
    }
    values.update(overrides)
    return ScriptOptions(**values)


def render(options: ScriptOptions, *, fingerprint: str = FINGERPRINT, base_url: str = BASE_URL) -> str:
    return render_onboarding_script(
        options, correlation_id=CORRELATION_ID, tenant_id=TENANT_ID, base_url=base_url, ca_fingerprint=fingerprint
    )


# --- Goldens ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: variant_name(*v))
def test_script_matches_its_golden(variant):
    script = render(options_for(*variant))
    golden = GOLDEN_DIR / variant_name(*variant)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN_DIR.mkdir(exist_ok=True)
        golden.write_text(script)
    assert golden.exists(), f"{golden.name} is missing: run with UPDATE_GOLDEN=1 to create it"
    assert script == golden.read_text(), f"{golden.name} differs: if intended, regenerate with UPDATE_GOLDEN=1"


def test_goldens_show_the_real_portal_structure():
    linux = (GOLDEN_DIR / "linux-scale-proxy-tags.sh").read_text()
    assert "# Add the service principal application ID and secret here" in linux
    assert "export authType='principal';" in linux
    assert '--service-principal-id "$servicePrincipalId" --service-principal-secret' in linux
    assert (
        r"tags='Datacenter=CH01,City=Baar,StateOrDistrict=Zug,Owner='\''Shared Infrastructure Services'\''';" in linux
    )
    assert 'installArgs+=(--proxy "$proxyUrl")' in linux
    single = (GOLDEN_DIR / "linux-single.sh").read_text()
    assert "export authType='token';" in single and "servicePrincipal" not in single
    windows = (GOLDEN_DIR / "windows-scale-proxy.ps1").read_text()
    for line in (
        "$env:SUBSCRIPTION_ID = '00000000-1111-2222-3333-444444444444';",
        "$env:AUTH_TYPE = 'principal';",
        "$env:CORRELATION_ID = '8d6f4a5e-1c2b-4e3f-9a8b-7c6d5e4f3a2b';",
        "$env:CLOUD = 'AzureCloud';",
        "$ServicePrincipalClientSecret = '<ENTER SECRET HERE>';",
        "$installArgs.Proxy = $proxyUrl",
        "& $installScript @installArgs;",
        "[Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor 3072;",
    ):
        assert line in windows
    assert "http://" not in windows.replace("'http://proxy.contoso.local:3128'", "")


# --- bash: syntax and shellcheck -------------------------------------------------------------------------------------

LINUX_VARIANTS = [v for v in VARIANTS if v[0] == "linux"]


def hostile_linux_options(**overrides) -> ScriptOptions:
    tags = {f"t{i}": value for i, value in enumerate(HOSTILE)}
    tags["'; rm -rf ~; '"] = "name too"
    values = {"tags": tags, "service_principal_secret": HOSTILE[0], **overrides}
    return options_for("linux", True, True, True, **values)


@pytest.mark.parametrize("variant", LINUX_VARIANTS, ids=lambda v: variant_name(*v))
def test_linux_script_passes_bash_n_and_shellcheck(variant, tmp_path):
    path = tmp_path / "OnboardingScript.sh"
    path.write_text(render(options_for(*variant)))
    subprocess.run(["bash", "-n", str(path)], check=True)
    result = subprocess.run([SHELLCHECK, "--severity=style", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_linux_script_with_hostile_values_passes_shellcheck(tmp_path):
    path = tmp_path / "OnboardingScript.sh"
    path.write_text(render(hostile_linux_options()))
    subprocess.run(["bash", "-n", str(path)], check=True)
    result = subprocess.run([SHELLCHECK, "--severity=style", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


# --- bash: a real run in a sandbox -----------------------------------------------------------------------------------

RECORD = r"""record() {  # record NAME ARG...: one file per call, the arguments NUL-separated
    local file
    file=$(mktemp "$STUB_LOG/$(date +%s%N)-$1-XXXXXX")
    shift
    printf '%s\0' "$@" > "$file"
}
"""

CURL_STUB = (
    "#!/bin/bash\n"
    + RECORD
    + r"""record curl "$@"
out= url= insecure= cacert= method=GET body=
while [ $# -gt 0 ]; do
    case $1 in
        --output) out=$2; shift ;;
        --insecure) insecure=1 ;;
        --cacert) cacert=$2; shift ;;
        --request) method=$2; shift ;;
        --data-binary) body=${2#@}; shift ;;
        --proxy|--max-time|--header|--proto) shift ;;
        -*) ;;
        *) url=$1 ;;
    esac
    shift
done
case $url in https://*) ;; *) echo "stub curl: not https: $url" >&2; exit 1 ;; esac
if [ -n "$insecure" ]; then
    # Only the CA certificate may be fetched without verification.
    case $url in */downloads/ca.pem) ;; *) echo "stub curl: --insecure for $url" >&2; exit 60 ;; esac
    { cat "$STUB_SERVED_CA"; } > "$out"
    exit 0
fi
# Every other request must trust exactly one certificate: the pinned portal CA.
count=$(grep -c 'BEGIN CERTIFICATE' "$cacert")
got=$(awk '/BEGIN CERTIFICATE/{f=1;next} /END CERTIFICATE/{exit} f' "$cacert" | base64 -d | sha256sum | cut -d ' ' -f 1)
if [ "$count" != 1 ] || [ "$got" != "$STUB_CA_FINGERPRINT" ]; then
    echo "stub curl: untrusted CA file for $url" >&2; exit 60
fi
case $url in
    */downloads/install_linux_azcmagent.sh)
        if [ -n "$STUB_DOWNLOAD_ERROR" ]; then printf '%s\n' "$STUB_DOWNLOAD_ERROR" >&2; exit 22; fi
        cp "$STUB_INSTALLER" "$out" ;;
    */his/log)
        [ "$method" = PUT ] || exit 22
        cp "$body" "$STUB_LOG/report.json" ;;
    *) echo "stub curl: 404 $url" >&2; exit 22 ;;
esac
"""
)

WGET_STUB = (
    "#!/bin/bash\n"
    + RECORD
    + r"""record wget "$@"
out= url= insecure= cacert=
for arg in "$@"; do
    case $arg in
        --output-document=*) out=${arg#--output-document=} ;;
        --no-check-certificate) insecure=1 ;;
        --ca-certificate=*) cacert=${arg#--ca-certificate=} ;;
        https://*) url=$arg ;;
    esac
done
if [ -n "$insecure" ]; then
    case $url in */downloads/ca.pem) cat "$STUB_SERVED_CA" > "$out"; exit 0 ;; *) exit 5 ;; esac
fi
got=$(awk '/BEGIN CERTIFICATE/{f=1;next} /END CERTIFICATE/{exit} f' "$cacert" | base64 -d | sha256sum | cut -d ' ' -f 1)
[ "$got" = "$STUB_CA_FINGERPRINT" ] || exit 5
case $url in
    */downloads/install_linux_azcmagent.sh) cp "$STUB_INSTALLER" "$out" ;;
    *) exit 8 ;;
esac
"""
)

INSTALLER_STUB = (
    "#!/bin/bash\n"
    + RECORD
    + r"""record installer "$@"
printf '%s\0' "$AZCMAGENT_PREFIX" "$AZCMAGENT_CA_FILE" > "$STUB_LOG/installer.env"
mkdir -p "$AZCMAGENT_PREFIX/bin"
cp "$STUB_AZCMAGENT" "$AZCMAGENT_PREFIX/bin/azcmagent"
chmod +x "$AZCMAGENT_PREFIX/bin/azcmagent"
echo "Installed azcmagent into $AZCMAGENT_PREFIX"
"""
)

AZCMAGENT_STUB = (
    "#!/bin/bash\n"
    + RECORD
    + r"""record azcmagent "$@"
printf '%s\0' "$@" > "$STUB_LOG/azcmagent.argv"
exit "${STUB_AZCMAGENT_EXIT:-0}"
"""
)

SUDO_STUB = "#!/bin/bash\n" + RECORD + 'record sudo "$@"\nexec "$@"\n'
ID_STUB = '#!/bin/bash\nif [ "$1" = -u ]; then echo "$STUB_UID"; else echo "uid=$STUB_UID"; fi\n'
REAL_TOOLS = [
    "bash", "awk", "tr", "base64", "sha256sum", "cut", "mktemp", "rm", "mkdir", "tee", "tail", "env", "cat",
    "cp", "chmod", "date", "grep", "sed", "ls", "touch", "whoami",  # touch/whoami: hostile values would find them
]  # fmt: skip


class Sandbox:
    """A temporary root: stub tools first on PATH, a HOME and a working directory with sentinel files."""

    def __init__(self, root: Path, *, downloader: str = "curl", uid: int = 0) -> None:
        self.root = root
        self.bin = root / "bin"
        self.log = root / "log"
        self.home = root / "home"
        self.cwd = root / "cwd"
        self.prefix = root / "prefix"
        self.mark = uuid.uuid4().hex
        for directory in (self.bin, self.log, self.home, self.cwd, root / "tmp"):
            directory.mkdir()
        (self.home / "keep.txt").write_text("home")
        (self.cwd / "keep.txt").write_text("cwd")
        stubs = {"sudo": SUDO_STUB, "id": ID_STUB, "sleep": "#!/bin/bash\nexit 0\n"}
        stubs[downloader] = CURL_STUB if downloader == "curl" else WGET_STUB
        for name, text in stubs.items():
            self._write(self.bin / name, text)
        self._write(root / "installer.sh", INSTALLER_STUB)
        self._write(root / "azcmagent", AZCMAGENT_STUB)
        for tool in REAL_TOOLS:
            real = shutil.which(tool, path="/usr/bin:/bin")
            assert real, f"{tool} is needed by the sandbox"
            if not (self.bin / tool).exists():
                (self.bin / tool).symlink_to(real)
        ca_pem = pki.ca_certificate_pem()
        self.served_ca = root / "served-ca.pem"
        self.served_ca.write_bytes(ca_pem)
        self.env = {
            "PATH": str(self.bin),
            "HOME": str(self.home),
            "TMPDIR": str(root / "tmp"),
            "AZCMAGENT_PREFIX": str(self.prefix),
            "STUB_LOG": str(self.log),
            "STUB_SERVED_CA": str(self.served_ca),
            "STUB_CA_FINGERPRINT": pki.ca_fingerprint_sha256(),
            "STUB_INSTALLER": str(root / "installer.sh"),
            "STUB_AZCMAGENT": str(root / "azcmagent"),
            "STUB_UID": str(uid),
            "LANG": "C.UTF-8",
        }

    @staticmethod
    def _write(path: Path, text: str) -> None:
        path.write_text(text)
        path.chmod(0o755)

    def run(self, script: str, **env) -> subprocess.CompletedProcess:
        script = script.replace("MARK", self.mark)
        path = self.root / "OnboardingScript.sh"
        path.write_text(script)
        return subprocess.run(
            ["/usr/bin/bash", str(path)],
            cwd=self.cwd,
            env={**self.env, **env},
            capture_output=True,
            timeout=60,
            check=False,
        )

    def calls(self) -> list[tuple[str, list[bytes]]]:
        """Every stub call in order: (tool, argv)."""
        result = []
        for file in sorted(self.log.iterdir()):
            match = re.match(r"^\d+-(\w+)-", file.name)
            if match:
                result.append((match.group(1), file.read_bytes().split(b"\0")[:-1]))
        return result

    def argv(self) -> list[str]:
        return [a.decode() for a in (self.log / "azcmagent.argv").read_bytes().split(b"\0")[:-1]]

    def assert_no_side_effects(self) -> None:
        assert not list(Path("/tmp").glob(f"pwned-{self.mark}*")), "a hostile value ran a command"
        assert not list(self.root.rglob(f"pwned-{self.mark}*"))
        assert (self.home / "keep.txt").read_text() == "home"
        assert sorted(p.name for p in self.cwd.iterdir()) == ["keep.txt"]


def flag(argv: list[str], name: str) -> str:
    assert argv.count(name) == 1, f"{name} appears {argv.count(name)} times in {argv}"
    return argv[argv.index(name) + 1]


def real_fingerprint_script(options: ScriptOptions) -> str:
    return render_onboarding_script(
        options, correlation_id=CORRELATION_ID, tenant_id=TENANT_ID, base_url=BASE_URL, ca_fingerprint=None
    )


def test_linux_script_runs_and_passes_every_value_to_azcmagent_exactly(tmp_path):
    sandbox = Sandbox(tmp_path, uid=1000)
    hostile_tags = {f"t{i}": value.replace("MARK", sandbox.mark) for i, value in enumerate(HOSTILE)}
    hostile_tags["'; rm -rf ~; '"] = "a hostile name"
    options = options_for("linux", True, True, True, tags=hostile_tags, service_principal_secret=HOSTILE[1])
    result = sandbox.run(real_fingerprint_script(options))
    assert result.returncode == 0, result.stderr.decode()

    argv = sandbox.argv()
    assert argv[0] == "connect"
    assert flag(argv, "--service-principal-id") == SP_ID
    assert flag(argv, "--service-principal-secret") == HOSTILE[1].replace("MARK", sandbox.mark)
    assert flag(argv, "--resource-group") == "arc-servers-rg"
    assert flag(argv, "--tenant-id") == TENANT_ID
    assert flag(argv, "--location") == "westeurope"
    assert flag(argv, "--subscription-id") == SUBSCRIPTION_ID
    assert flag(argv, "--cloud") == "AzureCloud"
    assert flag(argv, "--correlation-id") == CORRELATION_ID
    assert parse_tags(flag(argv, "--tags")) == hostile_tags
    sandbox.assert_no_side_effects()

    calls = sandbox.calls()
    tools = [tool for tool, _ in calls]
    # CA first (unverified), then the installer (verified), through sudo because the user is not root.
    assert tools[0] == "curl" and calls[0][1][-1] == f"{BASE_URL}/downloads/ca.pem".encode()
    assert b"--insecure" in calls[0][1]
    assert tools[1] == "curl" and calls[1][1][-1] == f"{BASE_URL}/downloads/install_linux_azcmagent.sh".encode()
    assert b"--insecure" not in calls[1][1] and b"--cacert" in calls[1][1]
    for _, args in calls[:2]:
        assert args[args.index(b"--proxy") + 1] == b"http://proxy.contoso.local:3128"
    assert tools[2:] == ["sudo", "installer", "sudo", "azcmagent"]
    installer_args = [a.decode() for a in calls[3][1]]
    assert flag(installer_args, "--portal-url") == BASE_URL
    assert flag(installer_args, "--proxy") == "http://proxy.contoso.local:3128"
    prefix, ca_file = (sandbox.log / "installer.env").read_bytes().split(b"\0")[:2]
    assert prefix.decode() == str(sandbox.prefix)
    assert flag(installer_args, "--ca-file") == ca_file.decode()
    # The temporary directory (with the CA copy) is removed at exit.
    assert not list((tmp_path / "tmp").iterdir())


@pytest.mark.parametrize("secret", HOSTILE, ids=range(len(HOSTILE)))
def test_every_hostile_secret_reaches_azcmagent_byte_for_byte(tmp_path, secret):
    sandbox = Sandbox(tmp_path, uid=0)
    secret = secret.replace("MARK", sandbox.mark)
    options = options_for("linux", True, False, False, service_principal_secret=secret)
    result = sandbox.run(real_fingerprint_script(options))
    assert result.returncode == 0, result.stderr.decode()
    raw = (sandbox.log / "azcmagent.argv").read_bytes().split(b"\0")
    assert raw[raw.index(b"--service-principal-secret") + 1] == secret.encode()
    assert "--tags" not in sandbox.argv()
    assert "sudo" not in [tool for tool, _ in sandbox.calls()]  # root: no sudo
    sandbox.assert_no_side_effects()


def test_single_server_script_connects_without_service_principal(tmp_path):
    sandbox = Sandbox(tmp_path)
    result = sandbox.run(real_fingerprint_script(options_for("linux", False, False, True)))
    assert result.returncode == 0, result.stderr.decode()
    argv = sandbox.argv()
    assert "--service-principal-id" not in argv and "--service-principal-secret" not in argv
    assert parse_tags(flag(argv, "--tags")) == TAGS
    assert all(b"--proxy" not in args for _, args in sandbox.calls())


def test_linux_script_works_with_wget_only(tmp_path):
    sandbox = Sandbox(tmp_path, downloader="wget")
    result = sandbox.run(real_fingerprint_script(options_for("linux", False, True, False)))
    assert result.returncode == 0, result.stderr.decode()
    calls = sandbox.calls()
    assert [tool for tool, _ in calls] == ["wget", "wget", "installer", "azcmagent"]
    assert b"--no-check-certificate" in calls[0][1] and b"--no-check-certificate" not in calls[1][1]
    assert b"https_proxy=http://proxy.contoso.local:3128" in calls[1][1]


def test_wrong_fingerprint_stops_before_the_installer_is_downloaded(tmp_path):
    sandbox = Sandbox(tmp_path)
    script = render(options_for("linux", False, False, False), fingerprint="0" * 64, base_url=BASE_URL)
    result = sandbox.run(script)
    assert result.returncode != 0
    assert b"fingerprint" in result.stderr
    calls = sandbox.calls()
    assert len(calls) == 1 and calls[0][1][-1].endswith(b"/downloads/ca.pem")
    assert not (sandbox.log / "azcmagent.argv").exists()
    assert not (sandbox.log / "report.json").exists()  # nothing is sent to an unverified server


def test_an_extra_certificate_appended_to_ca_pem_is_not_trusted(tmp_path):
    sandbox = Sandbox(tmp_path)
    other = pki.issue_machine_certificate(
        public_key=__import__("identity.pki", fromlist=["_new_key"])._new_key().public_key(), vm_id="attacker"
    )
    sandbox.served_ca.write_bytes(pki.ca_certificate_pem() + other.pem)
    result = sandbox.run(real_fingerprint_script(options_for("linux", False, False, False)))
    # The stub curl refuses a --cacert file holding more than the pinned CA: success shows only it was passed on.
    assert result.returncode == 0, result.stderr.decode()


def test_a_different_ca_is_refused(tmp_path):
    sandbox = Sandbox(tmp_path)
    other = pki.issue_machine_certificate(
        public_key=__import__("identity.pki", fromlist=["_new_key"])._new_key().public_key(), vm_id="attacker"
    )
    sandbox.served_ca.write_bytes(other.pem + pki.ca_certificate_pem())
    result = sandbox.run(real_fingerprint_script(options_for("linux", False, False, False)))
    assert result.returncode != 0
    assert len(sandbox.calls()) == 1


def test_download_failure_is_reported_as_json_with_the_exact_output(tmp_path, client, db):
    cache.clear()  # the report below must not meet another test's rate-limit count
    sandbox = Sandbox(tmp_path)
    output = 'curl: (22) 404 "quoted" \\ $(touch /tmp/pwned-MARK) \x01\tZürich'.replace("MARK", sandbox.mark)
    result = sandbox.run(real_fingerprint_script(options_for("linux", False, True, False)), STUB_DOWNLOAD_ERROR=output)
    assert result.returncode == 1
    report = json.loads((sandbox.log / "report.json").read_bytes())
    assert report == {
        "subscriptionId": SUBSCRIPTION_ID,
        "resourceGroup": "arc-servers-rg",
        "tenantId": TENANT_ID,
        "location": "westeurope",
        "correlationId": CORRELATION_ID,
        "authType": "token",
        "operation": "onboarding",
        "messageType": "DownloadScriptFailed",
        "message": output,
    }
    put = [args for tool, args in sandbox.calls() if args and args[-1].endswith(b"/his/log")]
    assert len(put) == 1 and b"--cacert" in put[0] and b"--insecure" not in put[0]
    sandbox.assert_no_side_effects()
    # And the portal accepts it.
    response = client.put("/his/log", data=(sandbox.log / "report.json").read_bytes(), content_type="application/json")
    assert response.status_code == 201


def test_connect_failure_is_reported_and_its_exit_code_kept(tmp_path):
    sandbox = Sandbox(tmp_path)
    result = sandbox.run(real_fingerprint_script(options_for("linux", False, False, False)), STUB_AZCMAGENT_EXIT="42")
    assert result.returncode == 42
    report = json.loads((sandbox.log / "report.json").read_bytes())
    assert report["messageType"] == "AzcmagentConnectFailed" and "42" in report["message"]


def test_at_scale_script_with_the_placeholder_secret_refuses_to_run(tmp_path):
    sandbox = Sandbox(tmp_path)
    result = sandbox.run(real_fingerprint_script(options_for("linux", True, False, False)))
    assert result.returncode == 1
    assert b"Add the service principal secret" in result.stderr
    assert sandbox.calls() == []


# --- PowerShell: the syntax tree -------------------------------------------------------------------------------------

PS_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


def ps_nodes(source: bytes):
    tree = PS_PARSER.parse(source)
    stack, nodes = [tree.root_node], []
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(node.children)
    return nodes


def verbatim_value(literal: str) -> str:
    assert literal[0] in PS_SINGLE_QUOTES and literal[-1] in PS_SINGLE_QUOTES
    return re.sub(f"([{PS_SINGLE_QUOTES}])([{PS_SINGLE_QUOTES}])", r"\2", literal[1:-1])


def hostile_windows_options(**overrides) -> ScriptOptions:
    tags = {f"t{i}": value for i, value in enumerate(HOSTILE)}
    values = {"tags": tags, "service_principal_secret": HOSTILE[4], **overrides}
    return options_for("windows", True, True, True, **values)


WINDOWS_CASES = [options_for(*v) for v in VARIANTS if v[0] == "windows"] + [
    hostile_windows_options(),
    hostile_windows_options(service_principal_secret="‘; Remove-Item C:\\ -Recurse; ’"),
]


@pytest.mark.parametrize("options", WINDOWS_CASES, ids=range(len(WINDOWS_CASES)))
def test_powershell_script_parses_and_user_values_are_only_verbatim_strings(options):
    script = render(options)
    source = script.encode()
    nodes = ps_nodes(source)
    broken = [(n.type, n.start_point) for n in nodes if n.type == "ERROR" or n.is_missing]
    assert not broken, broken

    verbatim = [n for n in nodes if n.type == "verbatim_string_characters"]
    literals = {verbatim_value(source[n.start_byte : n.end_byte].decode()) for n in verbatim}
    user_values = [options.resource_group, options.location, options.subscription_id]
    if options.proxy_url:
        user_values.append(options.proxy_url)
    if options.tags:
        user_values.append(format_tags(options.tags))
    if options.service_principal_id:
        user_values += [options.service_principal_id, options.service_principal_secret or "<ENTER SECRET HERE>"]
    for value in user_values:
        assert value in literals, f"{value!r} is not a verbatim string literal of its own"
    # Outside the verbatim literals, none of the hostile text is left: no variable, sub-expression or command.
    outside = bytearray(source)
    for node in verbatim:
        outside[node.start_byte : node.end_byte] = b" " * (node.end_byte - node.start_byte)
    for marker in ("pwned", "Remove-Item C:", "whoami", "rm -rf", "Zürich", "line two"):
        assert marker.encode() not in outside


def test_powershell_verbatim_literals_hold_nothing_that_expands():
    source = render(hostile_windows_options()).encode()
    for node in ps_nodes(source):
        if node.type == "verbatim_string_characters":
            assert node.child_count == 0
        if node.type in ("expandable_string_literal", "sub_expression", "variable"):
            text = source[node.start_byte : node.end_byte].decode()
            assert "pwned" not in text and "whoami" not in text


def test_script_refuses_a_plain_http_portal_url():
    with pytest.raises(ValueError, match="https"):
        render(options_for("linux", False, False, False), base_url="http://127.0.0.1:8000")


def test_ca_fingerprint_in_script_is_the_sha256_of_the_ca_der():
    der = base64.b64decode(b"".join(pki.ca_certificate_pem().split(b"\n")[1:-2]))
    assert hashlib.sha256(der).hexdigest() == pki.ca_fingerprint_sha256()
    script = real_fingerprint_script(options_for("linux", False, False, False))
    assert f"caFingerprint='{pki.ca_fingerprint_sha256()}';" in script

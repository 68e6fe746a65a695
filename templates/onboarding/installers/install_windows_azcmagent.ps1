{% autoescape off %}# Installs the Azure Connected Machine agent (ArcPortal's reference agent, version {{ version }}) on Windows.
#
#   & .\install_windows_azcmagent.ps1 -PortalUrl https://portal:8443 -CaFile C:\path\ca.pem [-Proxy http://host:port]
#                                     [-FindLinks DIR] [-NoIndex]
#
# Creates a virtual environment at $env:AZCMAGENT_PREFIX\venv (default "$env:ProgramFiles\AzureConnectedMachineAgent"),
# downloads the agent wheel from the portal over https trusting only -CaFile (whatever CA bundle the host sets),
# installs it and its dependencies (as pip is set up on this host), records the portal URL and CA in etc\install.json,
# and puts azcmagent.cmd in the prefix (added to the machine PATH when run as admin). As admin it also sets the
# managed-identity variables IDENTITY_ENDPOINT and IMDS_ENDPOINT (machine level) to the local HIMDS.
param(
    [string]$PortalUrl = $env:AZCMAGENT_PORTAL_URL,
    [string]$CaFile = $env:AZCMAGENT_CA_FILE,
    [Alias("proxy")][string]$Proxy = "",
    [string]$FindLinks = "",
    [switch]$NoIndex
)
$ErrorActionPreference = "Stop"
$WheelName = '{{ wheel_name }}'
$Version = '{{ version }}'

function Fail([string]$Message) {
    Write-Host -ForegroundColor Red "AZCM0150: Failed to install the Azure Connected Machine agent: $Message"
    exit 1
}

if (-not $PortalUrl) { $PortalUrl = '{{ portal_url }}' }
if (-not $PortalUrl.StartsWith("https://")) { Fail "the portal URL must be https:// (got '$PortalUrl')" }
$PortalUrl = $PortalUrl.TrimEnd("/")
if (-not $CaFile) { Fail "-CaFile is required: the CA certificate the onboarding script verified" }
if (-not (Test-Path -LiteralPath $CaFile)) { Fail "cannot read the CA file $CaFile" }

$Prefix = $env:AZCMAGENT_PREFIX
if (-not $Prefix) { $Prefix = Join-Path $env:ProgramFiles "AzureConnectedMachineAgent" }
$Python = $env:AZCMAGENT_PYTHON
if (-not $Python) { $Python = "py" }
$PythonArgs = @()
if ($Python -eq "py") { $PythonArgs = @("-3") }
& $Python @PythonArgs -c "import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)"
if ($LASTEXITCODE -ne 0) { Fail "Python 3.11 or newer is required ($Python)" }

Write-Host "Installing azcmagent $Version into $Prefix"
New-Item -ItemType Directory -Force -Path (Join-Path $Prefix "etc") | Out-Null
$PinnedCa = Join-Path $Prefix "etc\portal-ca.pem"
Copy-Item -LiteralPath $CaFile -Destination $PinnedCa -Force

$Venv = Join-Path $Prefix "venv"
$VenvPython = Join-Path $Venv "Scripts\python.exe"
if (-not (Test-Path -LiteralPath $VenvPython)) {
    & $Python @PythonArgs -m venv $Venv
    if ($LASTEXITCODE -ne 0) { Fail "could not create the virtual environment $Venv" }
}
if ($env:AZCMAGENT_SITE_PACKAGES) {
    $SitePackages = & $VenvPython -c "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    $env:AZCMAGENT_SITE_PACKAGES.Split(";") | Set-Content -Encoding ascii (Join-Path $SitePackages "azcmagent-extra-site.pth")
}

# The wheel comes from the portal, fetched by Python trusting only the pinned CA, and pip installs that local file
# with --isolated --no-index: no host setting (REQUESTS_CA_BUNDLE, PIP_CERT, PIP_INDEX_URL, ...) takes part. Its
# dependencies then come from the package index as pip is set up on this host (its CA bundle, index and proxy).
$WheelUrl = "$PortalUrl/downloads/$WheelName"
$Download = Join-Path ([IO.Path]::GetTempPath()) ("azcmagent-install-" + [Guid]::NewGuid().ToString("N"))
New-Item -ItemType Directory -Force -Path $Download | Out-Null
try {
    $FetchScript = Join-Path $Download "fetch_wheel.py"
    $Wheel = Join-Path $Download $WheelName
    @'
{% include "onboarding/installers/fetch_wheel.py" %}'@ | Set-Content -Encoding utf8 -LiteralPath $FetchScript
    & $VenvPython $FetchScript $WheelUrl $PinnedCa $Wheel $Proxy
    if ($LASTEXITCODE -ne 0) { Fail "could not download $WheelUrl" }
    & $VenvPython -m pip install --isolated --disable-pip-version-check --quiet --no-index --no-deps --force-reinstall $Wheel
    if ($LASTEXITCODE -ne 0) { Fail "could not install $WheelUrl" }

    $PipArgs = @("-m", "pip", "install", "--disable-pip-version-check", "--quiet")
    if ($Proxy) { $PipArgs += @("--proxy", $Proxy) }
    if ($FindLinks) { $PipArgs += @("--find-links", $FindLinks) }
    if ($NoIndex) { $PipArgs += "--no-index" }
    & $VenvPython @PipArgs $Wheel
    if ($LASTEXITCODE -ne 0) { Fail "could not install the agent's dependencies (cryptography, PyJWT, httpx)" }
} finally {
    Remove-Item -LiteralPath $Download -Recurse -Force -ErrorAction SilentlyContinue
}

$InstallConfig = Join-Path $Prefix "etc\install.json"
@{ portalUrl = $PortalUrl; caFile = $PinnedCa; proxy = $Proxy; version = $Version } |
    ConvertTo-Json | Set-Content -Encoding utf8 -LiteralPath $InstallConfig

$Agent = Join-Path $Venv "Scripts\azcmagent.exe"
$Wrapper = Join-Path $Prefix "azcmagent.cmd"
@(
    "@echo off",
    "if not defined AZCMAGENT_INSTALL_CONFIG set ""AZCMAGENT_INSTALL_CONFIG=$InstallConfig""",
    """$Agent"" %*"
) | Set-Content -Encoding ascii -LiteralPath $Wrapper

$IsAdmin = ([Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()).IsInRole(
    [Security.Principal.WindowsBuiltInRole]::Administrator)
if ($IsAdmin) {
    $MachinePath = [Environment]::GetEnvironmentVariable("Path", "Machine")
    if (-not ($MachinePath.Split(";") -contains $Prefix)) {
        [Environment]::SetEnvironmentVariable("Path", "$MachinePath;$Prefix", "Machine")
    }
}
$env:Path = "$env:Path;$Prefix"

# Managed identity (HIMDS): services and users find the machine's identity endpoint through IDENTITY_ENDPOINT and
# IMDS_ENDPOINT, set machine-wide as Azure's installer does (needs admin; this session gets them too).
$IdentityEndpoint = '{{ identity_endpoint }}'
$ImdsEndpoint = '{{ imds_endpoint }}'
if ($IsAdmin) {
    [Environment]::SetEnvironmentVariable("IDENTITY_ENDPOINT", $IdentityEndpoint, "Machine")
    [Environment]::SetEnvironmentVariable("IMDS_ENDPOINT", $ImdsEndpoint, "Machine")
} else {
    Write-Host "Not running as administrator: IDENTITY_ENDPOINT and IMDS_ENDPOINT are not set for the machine."
}
$env:IDENTITY_ENDPOINT = $IdentityEndpoint
$env:IMDS_ENDPOINT = $ImdsEndpoint

& $Wrapper version
if ($LASTEXITCODE -ne 0) { Fail "the installed agent does not run" }
Write-Host "Installed azcmagent $Version at $Wrapper"
exit 0
{% endautoescape %}

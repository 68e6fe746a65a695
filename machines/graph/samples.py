"""Sample queries: the Explorer's list, and Microsoft's published Resource Graph samples for Arc-enabled servers.

``MICROSOFT_SAMPLES`` are copied verbatim from "Azure Resource Graph sample queries for Azure Arc-enabled servers"
(MicrosoftDocs/azure-docs, includes/resource-graph/samples/bycat/azure-arc-enabled-servers.md); the first two touch
only ``Resources`` and run here as written, the third reads ``AdvisorResources``, a table this portal doesn't have.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    key: str
    title: str
    query: str
    chart: str = ""  # "bar" or "donut": the Explorer opens the Charts tab with it


MACHINES = "Resources\n| where type == 'microsoft.hybridcompute/machines'"

EXPLORER_SAMPLES = (
    Sample(
        "by-status",
        "Machines by status",
        f"{MACHINES}\n| summarize count() by status = tostring(properties.status)\n| order by count_ desc",
        chart="donut",
    ),
    Sample(
        "by-os",
        "Machines by operating system",
        f"{MACHINES}\n| extend os = tostring(properties.osSku)\n| summarize count() by os = iff(isempty(os), "
        "'(unknown)', os)\n| order by count_ desc",
        chart="bar",
    ),
    Sample(
        "by-agent-version",
        "Machines by agent version",
        f"{MACHINES}\n| summarize count() by agentVersion = tostring(properties.agentVersion)\n"
        "| order by agentVersion desc",
        chart="bar",
    ),
    Sample(
        "extensions-per-machine",
        "Extensions per machine",
        "Resources\n| where type == 'microsoft.hybridcompute/machines/extensions'\n"
        "| extend machine = tostring(split(id, '/')[8])\n"
        "| summarize extensions = count(), names = make_list(name) by machine, resourceGroup\n"
        "| order by extensions desc",
    ),
    Sample(
        "not-heard-from",
        "Machines not heard from in 7 days",
        f"{MACHINES}\n| extend status = tostring(properties.status), since = "
        "todatetime(properties.lastStatusChange)\n"
        "| where status == 'Expired' or (status == 'Disconnected' and since < ago(7d))\n"
        "| project name, status, since, resourceGroup, agentVersion = tostring(properties.agentVersion)\n"
        "| order by since asc",
    ),
)

DOMAINS_SAMPLE = """Resources
| where type == 'microsoft.hybridcompute/machines'
| project domain=tostring(properties.domainName)
| summarize Domains=make_list(domain), TotalMachineCount=sum(1)
| mvexpand EachDomain = Domains
| summarize PerDomainMachineCount = count() by tostring(EachDomain), TotalMachineCount
| extend Pct = 100 * bin(todouble(PerDomainMachineCount) / todouble(TotalMachineCount), 0.001)"""

EXTENSIONS_SAMPLE = """Resources
| where type == 'microsoft.hybridcompute/machines'
| project
\tid,
\tJoinID = toupper(id),
\tComputerName = tostring(properties.osProfile.computerName),
\tOSName = tostring(properties.osName)
| join kind=leftouter(
\tResources
\t| where type == 'microsoft.hybridcompute/machines/extensions'
\t| project
\t\tMachineId = toupper(substring(id, 0, indexof(id, '/extensions'))),
\t\tExtensionName = name
) on $left.JoinID == $right.MachineId
| summarize Extensions = make_list(ExtensionName) by id, ComputerName, OSName
| order by tolower(OSName) asc"""

ADVISOR_SAMPLE = """AdvisorResources
| where type == 'microsoft.advisor/recommendations'
| where properties.category == 'HighAvailability'
| where properties.shortDescription.solution == 'Upgrade to the latest version of the Azure Connected Machine agent'
| project
\t\tid,
\t\tJoinId = toupper(properties.resourceMetadata.resourceId),
\t\tmachineName = tostring(properties.impactedValue),
\t\tagentVersion = tostring(properties.extendedProperties.installedVersion),
\t\texpectedVersion = tostring(properties.extendedProperties.latestVersion)
| join kind=leftouter(
\tResources
\t| where type == 'microsoft.hybridcompute/machines'
\t| project
\t\tmachineId = toupper(id),
\t\tstatus = tostring (properties.status)
\t) on $left.JoinId == $right.machineId
| where status != 'Expired'
| summarize by id, machineName, agentVersion, expectedVersion
| order by tolower(machineName) asc"""

MICROSOFT_SAMPLES = (
    Sample("arc-domains", "Get count and percentage of Arc-enabled servers by domain", DOMAINS_SAMPLE),
    Sample("arc-extensions", "List all extensions installed on an Azure Arc-enabled server", EXTENSIONS_SAMPLE),
)

SAMPLES = EXPLORER_SAMPLES + MICROSOFT_SAMPLES
BY_KEY = {sample.key: sample for sample in SAMPLES}

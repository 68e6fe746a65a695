"""Azure regions the agent accepts for --location (ARC-REFERENCE.md §7); unknown → AZCM0020."""

REGIONS: dict[str, str] = {
    "eastus": "East US",
    "eastus2": "East US 2",
    "westus": "West US",
    "westus2": "West US 2",
    "westus3": "West US 3",
    "centralus": "Central US",
    "southcentralus": "South Central US",
    "northcentralus": "North Central US",
    "westcentralus": "West Central US",
    "canadacentral": "Canada Central",
    "canadaeast": "Canada East",
    "brazilsouth": "Brazil South",
    "northeurope": "North Europe",
    "westeurope": "West Europe",
    "uksouth": "UK South",
    "ukwest": "UK West",
    "francecentral": "France Central",
    "germanywestcentral": "Germany West Central",
    "swedencentral": "Sweden Central",
    "switzerlandnorth": "Switzerland North",
    "norwayeast": "Norway East",
    "southeastasia": "Southeast Asia",
    "eastasia": "East Asia",
    "australiaeast": "Australia East",
    "australiasoutheast": "Australia Southeast",
    "japaneast": "Japan East",
    "japanwest": "Japan West",
    "koreacentral": "Korea Central",
    "centralindia": "Central India",
    "southindia": "South India",
    "southafricanorth": "South Africa North",
    "uaenorth": "UAE North",
    "qatarcentral": "Qatar Central",
    "israelcentral": "Israel Central",
    "italynorth": "Italy North",
    "polandcentral": "Poland Central",
    "mexicocentral": "Mexico Central",
    "spaincentral": "Spain Central",
}


def normalize_location(value: str) -> str:
    """ "West Europe" == "westeurope"."""
    return "".join(value.split()).lower()

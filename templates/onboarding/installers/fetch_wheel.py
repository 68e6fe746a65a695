# Downloads the agent wheel from the portal trusting ONLY the pinned portal CA, whatever the host sets:
# ssl.create_default_context(cafile=...) loads that file alone (SSL_CERT_FILE/SSL_CERT_DIR are read only when no CA
# is given), and neither pip nor requests is involved (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE and PIP_CERT would win over
# pip's --cert). The proxy is --proxy when given, else the host's https_proxy/no_proxy, as curl in the script does.
import shutil
import ssl
import sys
import urllib.request

url, ca_file, destination = sys.argv[1:4]
proxy = sys.argv[4] if len(sys.argv) > 4 else ""  # Windows PowerShell 5.1 drops an empty argument
if not url.startswith("https://"):
    sys.exit(f"refusing to download {url}: not https")
context = ssl.create_default_context(cafile=ca_file)
proxies = urllib.request.ProxyHandler({"https": proxy} if proxy else None)
opener = urllib.request.build_opener(proxies, urllib.request.HTTPSHandler(context=context))
try:
    with opener.open(url, timeout=120) as response, open(destination, "wb") as out:
        shutil.copyfileobj(response, out)
except OSError as exc:
    sys.exit(f"could not download {url}: {exc}")

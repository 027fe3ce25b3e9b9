"""The provisioning YAML uses only keys Grafana 11 documents, and matches the dashboards.

Key sets from Grafana's provisioning docs ("Provision Grafana" > Data sources / Dashboards)
and the InfluxDB data source page ("Provision the data source", Flux). No Grafana server runs
on the development machines, so the files are checked against these sets instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from grafana.contract import DASHBOARDS_MOUNT, DATASOURCE_UID, GRAFANA_DIR
from tests.grafana.boards import dashboards, datasources_in

DATASOURCES_FILE = GRAFANA_DIR / "provisioning" / "datasources" / "fleetpulse.yaml"
DASHBOARDS_FILE = GRAFANA_DIR / "provisioning" / "dashboards" / "fleetpulse.yaml"

DATASOURCES_TOP = {"apiVersion", "datasources", "deleteDatasources", "prune"}
DATASOURCE_KEYS = {
    "name",
    "type",
    "uid",
    "access",
    "url",
    "orgId",
    "isDefault",
    "editable",
    "jsonData",
    "secureJsonData",
    "version",
    "user",
    "database",
    "basicAuth",
    "basicAuthUser",
    "withCredentials",
}
INFLUX_JSON_DATA = {
    "version",
    "organization",
    "defaultBucket",
    "timeInterval",
    "tlsSkipVerify",
    "tlsAuth",
    "tlsAuthWithCACert",
    "httpMode",
    "maxSeries",
    "timeout",
    "dbName",
    "httpHeaderName1",
    "insecureGrpc",
    "metadata",
}
INFLUX_SECURE_JSON_DATA = {
    "token",
    "password",
    "basicAuthPassword",
    "tlsCACert",
    "tlsClientCert",
    "tlsClientKey",
    "httpHeaderValue1",
}
PROVIDERS_TOP = {"apiVersion", "providers"}
PROVIDER_KEYS = {
    "name",
    "orgId",
    "folder",
    "folderUid",
    "type",
    "disableDeletion",
    "updateIntervalSeconds",
    "allowUiUpdates",
    "options",
}
PROVIDER_OPTIONS = {"path", "foldersFromFilesStructure"}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def unknown(keys: Any, allowed: set[str]) -> list[str]:
    return sorted(set(keys) - allowed)


def test_datasource_file_uses_only_documented_keys() -> None:
    doc = load(DATASOURCES_FILE)
    assert doc["apiVersion"] == 1
    assert unknown(doc, DATASOURCES_TOP) == []
    (source,) = doc["datasources"]
    assert unknown(source, DATASOURCE_KEYS) == []
    assert unknown(source["jsonData"], INFLUX_JSON_DATA) == []
    assert unknown(source["secureJsonData"], INFLUX_SECURE_JSON_DATA) == []


def test_datasource_is_influxdb_flux_with_org_bucket_and_token_from_the_environment() -> None:
    (source,) = load(DATASOURCES_FILE)["datasources"]
    assert source["type"] == "influxdb"
    assert source["uid"] == DATASOURCE_UID
    assert source["access"] == "proxy"
    assert source["jsonData"]["version"] == "Flux"
    assert source["jsonData"]["organization"] == "fleetpulse"
    assert source["jsonData"]["defaultBucket"] == "fleetpulse"
    # Grafana expands $VAR / ${VAR} in provisioning files; the secret never sits in the repo.
    assert source["secureJsonData"]["token"] == "$INFLUX_TOKEN"
    assert "token" not in source["jsonData"]


def test_dashboard_provider_uses_only_documented_keys() -> None:
    doc = load(DASHBOARDS_FILE)
    assert doc["apiVersion"] == 1
    assert unknown(doc, PROVIDERS_TOP) == []
    (provider,) = doc["providers"]
    assert unknown(provider, PROVIDER_KEYS) == []
    assert unknown(provider["options"], PROVIDER_OPTIONS) == []


def test_dashboard_provider_has_its_own_folder_and_reads_the_mounted_dashboards() -> None:
    (provider,) = load(DASHBOARDS_FILE)["providers"]
    assert provider["type"] == "file"
    assert provider["folder"] == "FleetPulse" and provider["folderUid"] == "fleetpulse"
    assert provider["options"]["path"] == DASHBOARDS_MOUNT
    assert provider["allowUiUpdates"] is False  # generated files: edit the generator


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_dashboards_reference_the_provisioned_datasource_uid(name: str) -> None:
    (source,) = load(DATASOURCES_FILE)["datasources"]
    uids = {ref["uid"] for ref in datasources_in(dashboards()[name])}
    assert uids == {source["uid"]}


def test_key_check_reports_a_misspelt_key() -> None:
    assert unknown({"name": 1, "secureJsonDta": {}}, DATASOURCE_KEYS) == ["secureJsonDta"]

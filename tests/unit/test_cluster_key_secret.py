"""Where a cluster's key store is: the release's values name it, else the gateway's labelled Secrets."""

from __future__ import annotations

from harness.cluster.key_secret import pick
from harness.cluster.secrets import gateway_values, key_sources


def test_the_store_is_the_existing_secrets_when_the_values_name_them() -> None:
    api_keys = {"existingSecret": "keys", "secretKey": "k", "hmac": {"existingSecret": "h"}}
    values = {"maas-gateway": {"apiKeys": api_keys}}
    assert key_sources(values) == ("keys", "k", "h", "hmac-key")
    assert key_sources({}) == ("", "api-keys", "", "hmac-key"), "chart-owned Secrets, default data keys"


def test_the_chart_owned_secrets_are_told_apart_by_their_data_key() -> None:
    secrets = [
        {"metadata": {"name": "rag-maas-gateway-redis-auth"}, "data": {"password": "x"}},
        {"metadata": {"name": "rag-maas-gateway-api-keys-hmac"}, "data": {"hmac-key": "x"}},
        {"metadata": {"name": "rag-maas-gateway-api-keys"}, "data": {"api-keys": "x"}},
    ]
    assert pick(secrets, "api-keys") == "rag-maas-gateway-api-keys"
    assert pick(secrets, "hmac-key", exclude="rag-maas-gateway-api-keys") == "rag-maas-gateway-api-keys-hmac"
    assert pick(secrets, "missing") == ""


def test_a_release_of_the_gateway_chart_itself_has_its_values_at_the_top() -> None:
    standalone = {"apiKeys": {"existingSecret": "mine"}, "tiers": {"free": {}}}
    assert gateway_values(standalone) == standalone and key_sources(standalone)[0] == "mine"
    assert gateway_values({"maas-gateway": {"tiers": {}}}) == {"tiers": {}}
    assert gateway_values({"llama-stack": {}}) == {}

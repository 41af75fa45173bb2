"""The `monitoring` compose profile, checked offline (issue 12 item 4): Prometheus's
configuration passes ``promtool check config``, Grafana's dashboard loads, and every
query of the dashboard names metrics that /metrics really exports."""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import ROOT

PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "whatsapp.json"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is missing: scripts/bootstrap.sh installs it "
                                                              "with the Debian package prometheus (NEED_PROMTOOL=1)")

# PromQL words that are not metric names.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
            "inf", "nan"}
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "summary": ("_sum", "_count", "_created")}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions,
    keywords, label names (inside braces or a by/without/on/ignoring list), strings or
    durations."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges and subqueries
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)  # label lists
    names = set()
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?", expr):
        word, call = match.group(1), match.group(2)
        if not call and word.lower() not in KEYWORDS:
            names.add(word)
    return names


def test_metric_names_of_an_expression():
    assert metric_names('histogram_quantile(0.95, sum by (le) (rate(wa_x_bucket{a="b,c"}[5m])))') == {"wa_x_bucket"}
    assert metric_names("sum(rate(a_sum[1m])) / sum(rate(a_count[1m])) * 60 and on (slot) b") == {"a_sum", "a_count", "b"}


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["panels"]
    return [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]


def exported(client) -> set[str]:
    """Every series name /metrics can export, also of the families with no sample now."""
    r = client.get("/metrics")
    assert r.status_code == 200
    names = set()
    for family in text_string_to_metric_families(r.get_data(as_text=True)):
        names.add(family.name)
        names.update(s.name for s in family.samples)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
    return names


def test_every_dashboard_query_names_a_metric_that_metrics_exports(client):
    """An operator's scrape (Prometheus scrapes with METRICS_TOKEN): every name in every
    query is exported, and the dashboard has the panels issue 12 asks for."""
    queries = dashboard_queries()
    names = set().union(*map(metric_names, queries))
    missing = names - exported(client)
    assert not missing, f"the dashboard queries metrics /metrics does not export: {sorted(missing)}"
    for needed in ("wa_sessions", "wa_sends_total", "wa_send_duration_seconds_bucket", "wa_queue_depth",
                   "wa_messages_waiting", "wa_slot_browser_memory_bytes", "wa_webhook_deliveries"):
        assert needed in names, needed


def test_grafana_provisioning_points_at_the_dashboard_and_prometheus():
    datasource = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    uids = {t["datasource"]["uid"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]}
    assert uids == {datasource["uid"]}
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "whatsapp.yml").read_text())["providers"][0]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in grafana["volumes"]
    assert grafana["profiles"] == compose["services"]["prometheus"]["profiles"] == ["monitoring"]
    # Its admin password comes from the environment; without one the container refuses to
    # start (tests/test_deployment.py), rather than Grafana with `admin`.
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "${GRAFANA_ADMIN_PASSWORD:-}"
    assert "GF_SECURITY_ADMIN_PASSWORD" in " ".join(grafana["entrypoint"])


@needs_promtool
def test_promtool_checks_the_prometheus_configuration(tmp_path):
    """As in the container: the token file the service writes beside the configuration."""
    config = tmp_path / "prometheus.yml"
    shutil.copy(PROMETHEUS, config)
    (tmp_path / "metrics_token").write_text("a-token")
    run = subprocess.run([PROMTOOL, "check", "config", str(config)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    scrape = yaml.safe_load(PROMETHEUS.read_text())["scrape_configs"][0]
    assert scrape["metrics_path"] == "/metrics" and scrape["static_configs"][0]["targets"] == ["api:3000"]
    assert scrape["authorization"]["credentials_file"] == "metrics_token"


@needs_promtool
def test_promtool_parses_every_dashboard_query(tmp_path):
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": expr} for i, expr in enumerate(dashboard_queries())]}]}
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    run = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr

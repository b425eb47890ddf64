"""A small valid cluster for the looker_node unit tests: the options every node gets (BASE, as extra
vars) and two nodes with their own (NODES, as host vars)."""

BASE = {
    "looker_node_version": "25.6.12",
    "looker_node_jar_source": "api",
    "looker_node_license_key": "LICENSE-KEY-UNIT",
    "looker_node_license_email": "ops@example.com",
    "looker_node_db_host": "10.1.2.10",
    "looker_node_db_password": "db-password-unit",
    "looker_node_analytics_db_host": "",
    "looker_node_master_key": "bG9va2Vyb3BzLXVuaXQtdGVzdC1tYXN0ZXIta2V5LTE=",
    "looker_node_memory_mb": 16384,
}
NODES = {
    "node-a": {"looker_node_cluster_address": "10.1.2.3", "looker_node_scheduler": True, "looker_node_render": False},
    "node-b": {"looker_node_cluster_address": "10.1.2.4", "looker_node_scheduler": False, "looker_node_render": True},
}

"""pytest plugin: fixtures shared by every package's tests (loaded by `-p mcp_testing.pytest_plugin`).

Each fixture lives beside what it serves; importing it here is what registers it with pytest.
"""

from mcp_testing.enterprise_idp import enterprise_idp, enterprise_idp_server
from mcp_testing.github_standin import github, github_server
from mcp_testing.oidc_standin import google_provider, oidc_provider, oidc_server
from mcp_testing.postgres import fresh_postgres_database, postgres_database
from mcp_testing.processes import free_port_fixture
from mcp_testing.workload_issuer import workload_issuer, workload_issuer_server

__all__ = [
    "enterprise_idp",
    "enterprise_idp_server",
    "free_port_fixture",
    "fresh_postgres_database",
    "github",
    "github_server",
    "google_provider",
    "oidc_provider",
    "oidc_server",
    "postgres_database",
    "workload_issuer",
    "workload_issuer_server",
]

/* routes.c - THE route table: every HTTP route of bandbill, its handler and
 * the permission it needs. Tests walk this table (permissions, the API
 * reference); a route added anywhere else does not exist. */
#include "api.h"
#include "router.h"

const route routes[] = {
    /* operations: outside /api/v1, open (bind to loopback or firewall them) */
    {"GET", "/healthz", api_healthz, PERM_PUBLIC, "liveness and readiness: database and live rule set"},
    {"GET", "/metrics", api_metrics, PERM_PUBLIC, "Prometheus metrics"},

    /* rules */
    {"GET", "/api/v1/rules", api_rules_get, "rules.read", "the live rule set: version, modules, functions"},
    {"POST", "/api/v1/rules/reload", api_rules_reload, "rules.reload", "reload the rules folder; the old rules stay on any failure"},
    {"POST", "/api/v1/rules/call", api_rules_call, "rules.call", "call one rule function with a JSON input"},
    {"GET", "/api/v1/rules/versions", api_rules_versions, "rules.read", "rule set versions that went live, newest first"},
    {"GET", "/api/v1/rules/versions/{version}", api_rules_version, "rules.read", "one stored rule set: files, or one file's text"},
};

const size_t routes_count = sizeof routes / sizeof *routes;

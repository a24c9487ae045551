/* routes.c - THE route table: every HTTP route of bandbill, its handler and
 * the permission it needs. Tests walk this table (permissions, the API
 * reference); a route added anywhere else does not exist. */
#include "api.h"
#include "router.h"

const route routes[] = {
    /* operations: outside /api/v1, open (bind to loopback or firewall them) */
    {"GET", "/healthz", api_healthz, PERM_PUBLIC, "liveness and readiness: database and live rule set", 0},
    {"GET", "/metrics", api_metrics, PERM_PUBLIC, "Prometheus metrics", 0},

    /* staff login: the one open /api/v1 route besides payment callbacks */
    {"POST", "/api/v1/auth/login", api_auth_login, PERM_PUBLIC, "log in to the console: a session cookie and a CSRF token", ROUTE_NO_CSRF},
    {"POST", "/api/v1/auth/logout", api_auth_logout, "auth.self", "end the current session", 0},
    {"GET", "/api/v1/auth/me", api_auth_me, "auth.self", "who is calling, with the session's CSRF token", 0},
    {"POST", "/api/v1/auth/password", api_auth_password, "auth.self", "change one's own password (ends one's other sessions)", 0},
    {"GET", "/api/v1/auth/sessions", api_auth_sessions, "auth.self", "one's own sessions", 0},
    {"DELETE", "/api/v1/auth/sessions/{id}", api_auth_session_delete, "auth.self", "end one of one's own sessions (an admin: anyone's)", 0},

    /* staff accounts and roles */
    {"GET", "/api/v1/users", api_users_list, "user.read", "staff accounts", 0},
    {"POST", "/api/v1/users", api_users_create, "user.write", "create a staff account", 0},
    {"GET", "/api/v1/users/{username}", api_users_get, "user.read", "one staff account", 0},
    {"PATCH", "/api/v1/users/{username}", api_users_update, "user.write", "change a staff account (role, status, contacts)", 0},
    {"POST", "/api/v1/users/{username}/unlock", api_users_unlock, "user.write", "lift a lockout after failed logins", 0},
    {"POST", "/api/v1/users/{username}/password", api_users_password, "user.write", "reset a password (ends the user's sessions)", 0},
    {"GET", "/api/v1/users/{username}/sessions", api_users_sessions, "user.read", "a staff account's sessions", 0},
    {"GET", "/api/v1/roles", api_roles_list, "role.read", "roles with their permissions and field policies", 0},
    {"POST", "/api/v1/roles", api_roles_create, "role.write", "create a role", 0},
    {"PUT", "/api/v1/roles/{name}", api_roles_update, "role.write", "change a role's permissions and field policies", 0},
    {"DELETE", "/api/v1/roles/{name}", api_roles_delete, "role.write", "delete a role no one holds (not a built-in one)", 0},

    /* audit trail */
    {"GET", "/api/v1/audit", api_audit_list, "audit.read", "audit records, newest first", 0},
    {"GET", "/api/v1/audit/verify", api_audit_verify, "audit.read", "check the audit chain", 0},

    /* rules */
    {"GET", "/api/v1/rules", api_rules_get, "rules.read", "the live rule set: version, modules, functions", 0},
    {"POST", "/api/v1/rules/reload", api_rules_reload, "rules.reload", "reload the rules folder; the old rules stay on any failure", 0},
    {"POST", "/api/v1/rules/call", api_rules_call, "rules.call", "call one rule function with a JSON input", ROUTE_READS},
    {"GET", "/api/v1/rules/versions", api_rules_versions, "rules.read", "rule set versions that went live, newest first", 0},
    {"GET", "/api/v1/rules/versions/{version}", api_rules_version, "rules.read", "one stored rule set: files, or one file's text", 0},
};

const size_t routes_count = sizeof routes / sizeof *routes;

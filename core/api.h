/* api.h - the HTTP handlers, one file per resource family (api_*.c).
 * They are wired to paths and permissions in routes.c only. */
#ifndef BB_API_H
#define BB_API_H

#include "http.h"

/* api_system.c */
int api_healthz(http_req *q);
int api_metrics(http_req *q);

/* api_rules.c */
int api_rules_get(http_req *q);
int api_rules_reload(http_req *q);
int api_rules_call(http_req *q);
int api_rules_versions(http_req *q);
int api_rules_version(http_req *q);

/* api_auth.c */
int api_auth_login(http_req *q);
int api_auth_logout(http_req *q);
int api_auth_me(http_req *q);
int api_auth_password(http_req *q);
int api_auth_sessions(http_req *q);
int api_auth_session_delete(http_req *q);
/* {"data": [sessions]} of a user; `current` marks the caller's own. */
void api_write_sessions(http_req *q, int64_t user_id, int64_t current);

/* api_users.c */
int api_users_list(http_req *q);
int api_users_get(http_req *q);
int api_users_create(http_req *q);
int api_users_update(http_req *q);
int api_users_unlock(http_req *q);
int api_users_password(http_req *q);
int api_users_sessions(http_req *q);
int api_roles_list(http_req *q);
int api_roles_create(http_req *q);
int api_roles_update(http_req *q);
int api_roles_delete(http_req *q);

/* api_audit.c */
int api_audit_list(http_req *q);
int api_audit_verify(http_req *q);

#endif

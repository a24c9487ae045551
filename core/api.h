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

#endif

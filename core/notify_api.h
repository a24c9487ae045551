/* notify_api.h - the HTTP handlers of messages (api_messages.c), wired to
 * paths and permissions in routes.c. */
#ifndef BB_NOTIFY_API_H
#define BB_NOTIFY_API_H

#include "http.h"

int api_messages_list(http_req *q);
int api_messages_get(http_req *q);
int api_messages_retry(http_req *q);
int api_customers_wechat_set(http_req *q);
int api_customers_wechat_delete(http_req *q);

#endif

/* api_customers.c - (being written) */
#include "api.h"

int api_customers_list(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_customers_create(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_customers_get(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_customers_update(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_customers_status(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_customers_history(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_customers_verify_send(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_customers_verify_confirm(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_customers_overview(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

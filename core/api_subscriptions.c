/* api_subscriptions.c - (being written) */
#include "api.h"

int api_subscriptions_list(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_subscriptions_create(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_subscriptions_get(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_subscriptions_change(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_subscriptions_cancel_change(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_charges_list(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_charges_create(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_charges_cancel(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

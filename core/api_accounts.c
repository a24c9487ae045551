/* api_accounts.c - (being written) */
#include "api.h"

int api_accounts_list(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_accounts_create(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_accounts_reset(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_accounts_reset_code(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_accounts_reset_with_code(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_devices_list(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_devices_create(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_devices_get(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_devices_install(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_devices_remove(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_devices_swap(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_deposits_list(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_deposits_create(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_deposits_settle(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

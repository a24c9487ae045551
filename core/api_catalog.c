/* api_catalog.c - (being written) */
#include "api.h"

int api_products_list(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_products_create(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_products_get(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_products_update(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_products_add_version(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_pricing_rules(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

int api_customers_offers(http_req *q)
{
    http_reply_errf(q, 501, "not_implemented", "", "not implemented yet");
    return HTTP_DONE;
}

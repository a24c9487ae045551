/* cmd_catalog.c - (being written) */
#include "cli.h"

int cmd_product_list(cli *c, err *e)
{
    (void)c;
    return err_set(e, ERR_INTERNAL, "product list is not implemented yet");
}

int cmd_product_add(cli *c, err *e)
{
    (void)c;
    return err_set(e, ERR_INTERNAL, "product add is not implemented yet");
}

int cmd_product_price(cli *c, err *e)
{
    (void)c;
    return err_set(e, ERR_INTERNAL, "product price is not implemented yet");
}

int cmd_subscribe(cli *c, err *e)
{
    (void)c;
    return err_set(e, ERR_INTERNAL, "subscribe is not implemented yet");
}

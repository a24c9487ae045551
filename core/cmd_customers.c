/* cmd_customers.c - (being written) */
#include "cli.h"

int cmd_customer_add(cli *c, err *e)
{
    (void)c;
    return err_set(e, ERR_INTERNAL, "customer add is not implemented yet");
}

int cmd_customer_show(cli *c, err *e)
{
    (void)c;
    return err_set(e, ERR_INTERNAL, "customer show is not implemented yet");
}

int cmd_customer_find(cli *c, err *e)
{
    (void)c;
    return err_set(e, ERR_INTERNAL, "customer find is not implemented yet");
}

int cmd_customer_edit(cli *c, err *e)
{
    (void)c;
    return err_set(e, ERR_INTERNAL, "customer edit is not implemented yet");
}

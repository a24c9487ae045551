/* cmd_pay.c - payment channel commands: pay inspect. */
#include "cli.h"

int cmd_pay_inspect(cli *c, err *e)
{
    (void)c;
    return err_set(e, ERR_INVALID, "pay inspect: not built yet");
}

/* cmd_bench.c - (being written) */
#include "cli.h"

int cmd_bench_customers(cli *c, err *e)
{
    (void)c;
    return err_set(e, ERR_INTERNAL, "bench customers is not implemented yet");
}

/* main.c - the bandbill binary. Everything is in cli.c and below. */
#include "cli.h"

extern char **environ;

int main(int argc, char **argv)
{
    return cli_main(argc, argv, environ);
}

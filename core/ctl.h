/* ctl.h - the CLI's client for the running daemon's control socket. */
#ifndef BB_CTL_H
#define BB_CTL_H

#include "buf.h"
#include "err.h"

/* Sends one HTTP/1.1 request over the unix socket at `path` and reads the
 * whole reply. *status gets the HTTP status; body gets the reply body. */
int ctl_request(const char *path, const char *method, const char *target, const char *body, int *status, buf *resp,
                err *e);

#endif

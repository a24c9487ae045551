/* sandbox.h - a stand-in for Alipay and WeChat Pay, for the demo and for
 * trying payments offline: it makes the keys of both sides, the channel
 * settings for bandbill's config, and serves the channels' pay pages and
 * order API; "paying" sends bandbill a notification signed, and for
 * WeChat Pay encrypted, exactly as the real channel would. Nothing here is
 * used by the daemon itself. */
#ifndef BB_SANDBOX_H
#define BB_SANDBOX_H

#include "err.h"

/* Makes the key pairs and the channels' settings in dir (once: existing
 * keys are kept) and writes dir/channels.ini for `--config`, with the
 * sandbox at `listen` and bandbill at `daemon` ("http://127.0.0.1:8080"). */
int sandbox_init(const char *dir, const char *listen, const char *daemon, err *e);

/* Serves the sandbox on listen until SIGINT/SIGTERM. */
int sandbox_serve(const char *dir, const char *listen, err *e);

#endif

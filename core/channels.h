/* channels.h - payment channel plugins on the core's side: loading them
 * from the plugins folder, the host services they use (paychan.h), and
 * opening a channel with its settings.
 *
 * The registry is process-wide and filled once (channels_load) before any
 * thread uses it; afterwards it is read-only. */
#ifndef BB_CHANNELS_H
#define BB_CHANNELS_H

#include "err.h"
#include "paychan.h"

/* The host table given to every plugin. */
const paychan_host *channels_host(void);

/* Loads every `*.so` in dir that exports bandbill_paychan with this ABI.
 * A file that fails to load, or a name loaded twice, is an error naming
 * the file. Loading the same folder again is a no-op. Returns how many
 * channels are known in *count (may be NULL). */
int channels_load(const char *dir, int *count, err *e);
/* The plugin of that name, or NULL. */
const paychan_plugin *channels_find(const char *name);
/* Names of the loaded channels, in load order. */
int channels_count(void);
const paychan_plugin *channels_at(int i);
/* Unloads everything (tests, shutdown). */
void channels_unload(void);

/* An open channel: the plugin and its handle. */
typedef struct channel_handle {
    const paychan_plugin *p;
    void *h;
} channel_handle;

/* Opens channel `name` with settings. On a plugin's refusal, e carries its
 * message and e->field the setting. */
int channel_open(const char *name, const paychan_settings *s, channel_handle *out, err *e);
void channel_close(channel_handle *c);

struct cfg;

/* The plugins folder of the config: plugins.dir, else `plugins` beside
 * the binary. */
void channels_dir(const struct cfg *c, char *out, size_t n);
/* Loads the configured plugins folder and opens channel `name` with its
 * settings from the config (channel.NAME.*). */
int channel_open_configured(const struct cfg *c, const char *name, channel_handle *out, err *e);
/* One setting of a channel from the config, or NULL. */
const char *channels_setting(const struct cfg *c, const char *name, const char *key);

/* Formats a plugin's error as one line: "signature (Wechatpay-Signature): ...". */
void channels_describe(const paychan_error *pe, char *out, size_t n);

#endif

/* api_pay.c - the payment channels' side of the API: their notifications
 * (the only unauthenticated writes, open only for configured channels),
 * and payment orders for open invoices. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "api.h"
#include "audit.h"
#include "httpc.h"
#include "invoices.h"
#include "log.h"
#include "payments.h"
#include "payorders.h"
#include "rules.h"
#include "server.h"
#include "vault.h"

#define MAX_HEADERS 64

static void reply_channel(http_req *q, const server_channel *sc, int ok, const paychan_error *why)
{
    paychan_reply r;
    sc->ch.p->reply(sc->ch.h, ok, why, &r);
    http_reply_raw(q, r.status, r.content_type[0] ? r.content_type : "text/plain", r.body, strlen(r.body));
}

/* The headers as a JSON object, kept with the notification. */
static const char *headers_json(http_req *q, const char **names, const char **values, size_t n)
{
    jw w;
    if (jw_init(&w, 0)) return NULL;
    jw_obj_open(&w);
    for (size_t i = 0; i < n; i++) jw_kv_str(&w, names[i], values[i]);
    jw_obj_close(&w);
    size_t len;
    const char *s = jw_finish(&w, &len);
    char *out = s ? jv_strdup(http_arena(q), s, len) : NULL;
    jw_free(&w);
    return out;
}

/* Verified notifications wait here for the end of the loop's turn, then
 * are settled together in one transaction (each in a savepoint of its
 * own) and answered after its commit: one disk flush for all of them
 * rather than one each, and still no answer before the payment is
 * durable. The loop thread alone touches the queue. */
typedef struct pending {
    http_req *q;
    const server_channel *sc;
    paychan_notice nt;
    const char *headers;
    const char *body;
    size_t blen;
    struct pending *next;
} pending;

static pending *queue_head, **queue_tail = &queue_head;
static struct event *flush_ev;
#define BATCH_MAX 256

static int settle_one(server *s, pending *p, const char *today, payorder_result *r, err *e)
{
    db *d = server_db(s);
    const char *name = p->sc->name;
    payorder_expect x = {p->sc->app_id, p->sc->merchant_id, rules_live()};
    payorder_raw raw = {p->headers, p->body, p->blen, http_source(p->q)};
    int rc = payorders_settle(d, server_vault(s), name, &x, &p->nt, &raw, today, r, e);
    if (x.rules) ruleset_unref(x.rules);
    if (rc) return rc;
    jv_arena *a = http_arena(p->q);
    jv *detail = jv_obj(a);
    char actor[48];
    snprintf(actor, sizeof actor, "channel:%s", name);
    if (!detail || jv_obj_set_str(a, detail, "outcome", r->outcome) || jv_obj_set_str(a, detail, "reason", r->reason) ||
        jv_obj_set_str(a, detail, "out_trade_no", p->nt.out_trade_no) ||
        jv_obj_set_str(a, detail, "channel_txn_id", p->nt.channel_txn_id) ||
        jv_obj_set_int(a, detail, "amount", p->nt.amount) || jv_obj_set_int(a, detail, "payment_id", r->payment_id) ||
        jv_obj_set_bool(a, detail, "service_restored", r->restored))
        return err_set(e, ERR_NOMEM, "out of memory");
    char nid[24];
    snprintf(nid, sizeof nid, "%lld", (long long)r->notification_id);
    audit_event ev = {.action = "payment.notification", .object_type = "payment_notification", .object_id = nid,
                      .detail = detail};
    return http_audit_as(p->q, actor, "system", &ev, e);
}

static void flush_notifications(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    server *s = arg;
    db *d = server_db(s);
    pending *batch = queue_head, *p;
    int n = 0;
    for (p = batch; p && n < BATCH_MAX - 1; p = p->next) n++;
    /* cut the batch; what is left goes in the next turn */
    queue_head = p ? p->next : NULL;
    if (p) p->next = NULL;
    if (!queue_head) queue_tail = &queue_head;
    else event_active(flush_ev, EV_TIMEOUT, 1);

    char today[11];
    http_today(today);
    err e;
    err_clear(&e);
    int outer = db_begin(d, &e);
    payorder_result results[BATCH_MAX];
    int ok[BATCH_MAX] = {0};
    int i = 0;
    for (p = batch; p; p = p->next, i++) {
        err pe;
        err_clear(&pe);
        if (outer) break;
        int rc = db_begin(d, &pe);
        if (!rc) rc = settle_one(s, p, today, &results[i], &pe);
        if (rc) {
            db_rollback(d); /* this one only: back to its savepoint */
            log_msg(LOG_ERROR, "payment_notification_failed", "%s notification %s: %s", p->sc->name,
                    p->nt.channel_txn_id, pe.msg);
        } else if ((rc = db_commit(d, &pe)) == 0) {
            ok[i] = 1;
        }
    }
    /* the payments are committed before any channel hears that all is well */
    if (!outer && db_commit(d, &e)) {
        log_msg(LOG_ERROR, "payment_notification_failed", "the batch of %d did not commit: %s", i, e.msg);
        memset(ok, 0, sizeof ok);
    } else if (outer) {
        log_msg(LOG_ERROR, "payment_notification_failed", "cannot begin: %s", e.msg);
    }
    i = 0;
    for (p = batch; p; p = p->next, i++) {
        if (ok[i]) {
            payorder_result *r = &results[i];
            log_line *l = log_begin(!strcmp(r->outcome, "held") ? LOG_WARN : LOG_INFO, "payment_notification");
            log_str(l, "channel", p->sc->name);
            log_str(l, "outcome", r->outcome);
            log_str(l, "reason", r->reason);
            log_str(l, "out_trade_no", p->nt.out_trade_no);
            log_str(l, "channel_txn_id", p->nt.channel_txn_id);
            log_int(l, "amount", p->nt.amount);
            log_int(l, "payment_id", r->payment_id);
            log_int(l, "restored", r->restored);
            log_end(l);
            reply_channel(p->q, p->sc, 1, NULL);
        } else {
            paychan_error fail = {.check = "internal", .reply_status = 500};
            snprintf(fail.message, sizeof fail.message, "not recorded: try again");
            reply_channel(p->q, p->sc, 0, &fail);
        }
        free(p->nt.fields_json);
    }
}

void api_pay_release(void)
{
    if (flush_ev) event_free(flush_ev);
    flush_ev = NULL;
}

int api_notify(http_req *q)
{
    server *s = http_server(q);
    const char *name = http_param(q, "channel");
    const server_channel *sc = server_channel_find(s, name);
    if (!sc) {
        http_nothing_changed(q);
        http_reply_errf(q, 404, "not_found", "channel", "no payment channel '%s' is configured here", name);
        return HTTP_DONE;
    }
    const char *names[MAX_HEADERS], *values[MAX_HEADERS];
    size_t nh = http_headers(q, names, values, MAX_HEADERS);
    paychan_kv hdr[MAX_HEADERS];
    for (size_t i = 0; i < nh; i++) hdr[i] = (paychan_kv){names[i], values[i]};
    size_t blen;
    const char *body = http_raw_body(q, &blen);
    paychan_request req = {hdr, nh, body, blen};
    pending *p = jv_alloc(http_arena(q), sizeof *p);
    if (!p) {
        http_reply_errf(q, 500, "internal", "", "out of memory");
        return HTTP_DONE;
    }
    memset(p, 0, sizeof *p);
    paychan_error pe;
    memset(&pe, 0, sizeof pe);
    if (sc->ch.p->verify_notification(sc->ch.h, &req, (int64_t)time(NULL), &p->nt, &pe)) {
        /* refused: nothing changes; the raw request goes to the log for
         * whoever chases a rejected callback (bandbill pay inspect) */
        http_nothing_changed(q);
        log_line *l = log_begin(LOG_WARN, "payment_notification_refused");
        log_str(l, "channel", name);
        log_str(l, "check", pe.check);
        log_str(l, "field", pe.field);
        log_str(l, "msg", pe.message);
        log_str(l, "source", http_source(q));
        log_str(l, "rid", http_rid(q));
        log_str(l, "headers", headers_json(q, names, values, nh));
        log_strn(l, "body", body, blen > 8192 ? 8192 : blen);
        log_end(l);
        reply_channel(q, sc, 0, &pe);
        return HTTP_DONE;
    }
    p->q = q;
    p->sc = sc;
    p->headers = headers_json(q, names, values, nh);
    p->body = body;
    p->blen = blen;
    if (!flush_ev && !(flush_ev = event_new(server_base(s), -1, 0, flush_notifications, s))) {
        free(p->nt.fields_json);
        http_reply_errf(q, 500, "internal", "", "out of memory");
        return HTTP_DONE;
    }
    int first = queue_head == NULL;
    *queue_tail = p;
    queue_tail = &p->next;
    if (first) event_active(flush_ev, EV_TIMEOUT, 1);
    return HTTP_DEFERRED;
}

static const http_field order_spec[] = {{"channel", 's', 1}, {"ttl_min", 'i', 0}, {NULL, 0, 0}};

/* An order whose link the channel is making. */
typedef struct order_call {
    http_req *q;
    const server_channel *sc;
    int64_t id;
    char no[PAYORDER_NO_MAX];
    char subject[96];
    paychan_order po;
    paychan_link link;
} order_call;

/* No link: the order is closed (nobody could pay it) and the caller hears why. */
static void order_failed(order_call *oc, const char *why)
{
    db *d = server_db(http_server(oc->q));
    err e;
    if (db_run(d, &e, "UPDATE payment_orders SET status = 'closed' WHERE id = ? AND status = 'open'", "i", oc->id))
        log_msg(LOG_ERROR, "payment_order_failed", "order %s: %s", oc->no, e.msg);
    log_msg(LOG_WARN, "payment_order_failed", "order %s on %s: %s", oc->no, oc->sc->name, why);
    http_reply_errf(oc->q, 502, "channel_error", "channel", "%s cannot make a pay link for order %s: %s", oc->sc->name,
                    oc->no, why);
}

static void order_answered(void *arg, int status, const paychan_kv *headers, size_t nh, const char *body, size_t len,
                           const char *error)
{
    order_call *oc = arg;
    if (!status) {
        order_failed(oc, error);
        return;
    }
    paychan_request resp = {headers, nh, body, len};
    paychan_error pe;
    memset(&pe, 0, sizeof pe);
    if (!oc->sc->ch.p->order_response ||
        oc->sc->ch.p->order_response(oc->sc->ch.h, &oc->po, status, &resp, (int64_t)time(NULL), &oc->link, &pe)) {
        char line[400];
        channels_describe(&pe, line, sizeof line);
        order_failed(oc, line);
        return;
    }
    db *d = server_db(http_server(oc->q));
    err e;
    err_clear(&e);
    jv *order = NULL;
    int rc = db_run(d, &e, "UPDATE payment_orders SET pay_url = ? WHERE id = ?", "si",
                    oc->link.url[0] ? oc->link.url : oc->link.qr, oc->id);
    if (!rc) rc = payorders_get(d, oc->no, http_arena(oc->q), &order, &e);
    if (rc) {
        order_failed(oc, e.msg);
        return;
    }
    http_reply_resource(oc->q, 201, "payment_order", order);
}

int api_pay_orders_create(http_req *q)
{
    const jv *body = http_body(q);
    if (http_check_body(q, body, order_spec, 0)) return HTTP_DONE;
    server *s = http_server(q);
    db *d = server_db(s);
    err e;
    err_clear(&e);
    const char *chname = http_str(body, "channel");
    const server_channel *sc = server_channel_find(s, chname);
    if (!sc) {
        http_reply_errf(q, 422, "unknown_channel", "channel", "no payment channel '%s' is configured here", chname);
        return HTTP_DONE;
    }
    const jv *ttl = jv_get(body, "ttl_min");
    int64_t ttl_min = ttl && ttl->kind == JV_INT ? ttl->u.i : sc->order_ttl_min;
    const char *number = http_param(q, "number");
    int64_t inv = 0, customer = 0, due = 0;
    char status[20] = "";
    int rc = invoices_id_by_number(d, number, &inv, &e);
    if (!rc) {
        db_stmt *st = db_prepare(d, "SELECT customer_id, gross - paid - credited - written_off, status FROM invoices WHERE id = ?", &e);
        rc = st ? 0 : e.code;
        if (st) {
            db_bind_int(st, 1, inv);
            rc = db_step(d, st, &e);
            if (rc == DB_ROW) {
                customer = db_col_int(st, 0);
                due = db_col_int(st, 1);
                snprintf(status, sizeof status, "%s", db_col_text(st, 2));
            }
            db_done(st);
            rc = rc < 0 ? rc : 0;
        }
    }
    if (rc) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    if ((strcmp(status, "open") && strcmp(status, "partially_paid")) || due <= 0) {
        http_reply_errf(q, 409, "nothing_to_pay", "number", "invoice %s is %s: nothing to pay", number, status);
        return HTTP_DONE;
    }
    char by[96];
    audit_who who;
    http_audit_who(q, &who, by, sizeof by);
    payorder_new in = {.customer_id = customer, .invoice_id = inv, .channel = chname, .amount = due,
                       .ttl_min = ttl_min, .by = by};
    int64_t id;
    order_call *oc = jv_alloc(http_arena(q), sizeof *oc);
    if (!oc) {
        http_reply_errf(q, 500, "internal", "", "out of memory");
        return HTTP_DONE;
    }
    memset(oc, 0, sizeof *oc);
    snprintf(oc->subject, sizeof oc->subject, "宽带账单 %s", number);
    paychan_link *link = &oc->link;
    int made = 0; /* 0 no link, 1 a link, PAYCHAN_HTTP the channel must be asked */
    jv *order = NULL;
    rc = db_begin(d, &e);
    if (!rc) rc = payorders_create(d, &in, &id, oc->no, &e);
    oc->po = (paychan_order){.out_trade_no = oc->no, .amount = due, .subject = oc->subject,
                             .expires = (int64_t)time(NULL) + ttl_min * 60};
    if (!rc && sc->ch.p->create_order) {
        /* a link made offline goes in with the order: an order nobody can
         * pay is not kept */
        paychan_error pe;
        memset(&pe, 0, sizeof pe);
        made = sc->ch.p->create_order(sc->ch.h, &oc->po, (int64_t)time(NULL), link, &pe);
        if (made < 0) {
            char line[400];
            channels_describe(&pe, line, sizeof line);
            rc = err_field(&e, ERR_INTERNAL, "channel_error", "channel", "%s cannot make a pay link: %s", chname, line);
        } else if (made == 0) {
            rc = db_run(d, &e, "UPDATE payment_orders SET pay_url = ? WHERE id = ?", "si", link->url[0] ? link->url : link->qr,
                        id);
        }
    }
    if (!rc) rc = payorders_get(d, oc->no, http_arena(q), &order, &e);
    audit_event ev = {.action = "payment_order.create", .object_type = "payment_order", .object_id = oc->no, .after = order};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        free(link->http.body);
        http_fail(q, d, &e);
        return HTTP_DONE;
    }
    if (made != PAYCHAN_HTTP) {
        http_reply_resource(q, 201, "payment_order", order);
        return HTTP_DONE;
    }
    /* the channel makes the link: the order waits open, the request is
     * answered when the channel has answered */
    oc->q = q;
    oc->sc = sc;
    oc->id = id;
    rc = httpc_request(server_base(s), link->http.method, link->http.url, link->http.headers, link->http.body,
                       link->http.body_len, 10, order_answered, oc, &e);
    free(link->http.body);
    link->http.body = NULL;
    if (rc) {
        order_failed(oc, e.msg);
        return HTTP_DONE;
    }
    return HTTP_DEFERRED;
}

int api_pay_orders_get(http_req *q)
{
    db *d = server_db(http_server(q));
    err e;
    jv *order;
    if (payorders_get(d, http_param(q, "out_trade_no"), http_arena(q), &order, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    http_reply_resource(q, 200, "payment_order", order);
    return HTTP_DONE;
}

/* A refund the channel is giving back: recorded when it has. */
typedef struct refund_call {
    http_req *q;
    const server_channel *sc;
    payment_refund in;
    paychan_refund r;
    char out_refund_no[48], reason[520], date[11], by[96], noted[700];
    payment_refundable pr;
} refund_call;

/* Records the refund (the channel's id in the reason when it went through
 * one) with its audit record, and replies. */
static void refund_record(http_req *q, payment_refund *in)
{
    db *d = server_db(http_server(q));
    err e;
    err_clear(&e);
    jv *obj = NULL, *before = NULL;
    jv_arena *a = http_arena(q);
    int rc = payments_get(d, in->payment_id, a, &before, &e);
    if (!rc) rc = db_begin(d, &e);
    if (!rc) rc = payments_refund(d, in, &e);
    if (!rc) rc = payments_get(d, in->payment_id, a, &obj, &e);
    char oid[24];
    snprintf(oid, sizeof oid, "%lld", (long long)in->payment_id);
    audit_event ev = {.action = "payment.refund", .object_type = "payment", .object_id = oid, .before = before, .after = obj};
    if (!rc) rc = http_audit(q, &ev, &e);
    if (!rc) rc = db_commit(d, &e);
    if (rc) {
        http_fail(q, d, &e);
        return;
    }
    http_reply_resource(q, 200, "payment", obj);
}

static void refund_answered(void *arg, int status, const paychan_kv *headers, size_t nh, const char *body, size_t len,
                            const char *error)
{
    refund_call *rc = arg;
    if (!status) {
        http_reply_errf(rc->q, 502, "channel_error", "id", "%s did not answer the refund: %s", rc->sc->name, error);
        return;
    }
    paychan_request resp = {headers, nh, body, len};
    paychan_refund_result res;
    paychan_error pe;
    memset(&pe, 0, sizeof pe);
    if (rc->sc->ch.p->refund_response(rc->sc->ch.h, &rc->r, status, &resp, (int64_t)time(NULL), &res, &pe)) {
        char line[400];
        channels_describe(&pe, line, sizeof line);
        http_reply_errf(rc->q, 502, "channel_error", "id", "%s refused the refund: %s", rc->sc->name, line);
        return;
    }
    snprintf(rc->noted, sizeof rc->noted, "%s (%s refund %s, %s)", rc->reason, rc->sc->name, res.refund_id, res.status);
    rc->in.reason = rc->noted;
    rc->in.via_channel = 1;
    refund_record(rc->q, &rc->in);
}

int api_payments_refund(http_req *q)
{
    static const http_field spec[] = {{"amount", 'm', 1}, {"reason", 's', 1}, {"date", 's', 0}, {NULL, 0, 0}};
    const jv *body = http_body(q);
    if (http_check_body(q, body, spec, 0)) return HTTP_DONE;
    const char *p = http_param(q, "id");
    char *end;
    long long id = p ? strtoll(p, &end, 10) : 0;
    if (!p || *end || id <= 0) {
        http_reply_errf(q, 404, "not_found", "id", "no payment %s", p ? p : "");
        return HTTP_DONE;
    }
    char today[11];
    http_today(today);
    const char *date = http_str(body, "date") ? http_str(body, "date") : today;
    if (strlen(date) == 10 && strcmp(date, today) > 0) {
        http_reply_errf(q, 400, "invalid_date", "date", "%s is in the future (today is %s)", date, today);
        return HTTP_DONE;
    }
    server *s = http_server(q);
    db *d = server_db(s);
    err e;
    err_clear(&e);
    refund_call *rc = jv_alloc(http_arena(q), sizeof *rc);
    if (!rc) {
        http_reply_errf(q, 500, "internal", "", "out of memory");
        return HTTP_DONE;
    }
    memset(rc, 0, sizeof *rc);
    audit_who who;
    http_audit_who(q, &who, rc->by, sizeof rc->by);
    snprintf(rc->reason, sizeof rc->reason, "%s", http_str(body, "reason"));
    snprintf(rc->date, sizeof rc->date, "%s", date);
    const jv *amount = jv_get(body, "amount");
    rc->in = (payment_refund){.payment_id = id, .amount = amount->u.i, .reason = rc->reason, .entry_date = rc->date,
                              .by = rc->by};
    if (payments_refundable(d, id, &rc->pr, &e)) {
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    if (!strcmp(rc->pr.channel, "counter") || !strcmp(rc->pr.channel, "bank")) {
        refund_record(q, &rc->in);
        return HTTP_DONE;
    }
    /* a channel's money goes back through the channel first; what it
     * refuses is not recorded. The checks come before it is asked. */
    rc->sc = server_channel_find(s, rc->pr.channel);
    if (!rc->sc || !rc->sc->ch.p->refund || !rc->sc->ch.p->refund_response) {
        http_reply_errf(q, 409, "refund_through_channel", "id", "payment %lld came through %s, which gives no refunds here", id,
                        rc->pr.channel);
        return HTTP_DONE;
    }
    if (strcmp(rc->pr.status, "received") || rc->in.amount > rc->pr.refundable) {
        http_reply_errf(q, 409, strcmp(rc->pr.status, "received") ? "not_refundable" : "exceeds_refundable", "amount",
                        "at most %lld.%02lld can be refunded", (long long)(rc->pr.refundable / 100),
                        (long long)(rc->pr.refundable % 100));
        return HTTP_DONE;
    }
    snprintf(rc->out_refund_no, sizeof rc->out_refund_no, "BBR%lldN%lld", id, (long long)rc->pr.refunds + 1);
    rc->r = (paychan_refund){.out_trade_no = rc->pr.out_trade_no[0] ? rc->pr.out_trade_no : NULL,
                             .channel_txn_id = rc->pr.channel_txn_id, .out_refund_no = rc->out_refund_no,
                             .amount = rc->in.amount, .total = rc->pr.amount, .reason = rc->reason};
    paychan_http h;
    paychan_error pe;
    memset(&pe, 0, sizeof pe);
    if (rc->sc->ch.p->refund(rc->sc->ch.h, &rc->r, (int64_t)time(NULL), &h, &pe) != PAYCHAN_HTTP) {
        char line[400];
        channels_describe(&pe, line, sizeof line);
        http_reply_errf(q, 502, "channel_error", "id", "%s refund: %s", rc->sc->name, line);
        return HTTP_DONE;
    }
    rc->q = q;
    int r = httpc_request(server_base(s), h.method, h.url, h.headers, h.body, h.body_len, 15, refund_answered, rc, &e);
    free(h.body);
    if (r) {
        http_reply_error(q, 502, &e);
        return HTTP_DONE;
    }
    return HTTP_DEFERRED;
}

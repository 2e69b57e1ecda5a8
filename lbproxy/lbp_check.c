/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lbp_check.c -- active health checks of the proxy's backends: one timer and,
 * while a check runs, one bufferevent per backend; rise/fall hysteresis
 * turns results into a verdict that is handed back to the backend.
 *
 * Key invariant: a started check (timer set) is IDLE with the timer counting
 * down to the next run, or RUNNING with the timer as the run's deadline and
 * bev connecting or waiting for the status line. Every run ends in
 * check_done(), exactly once, which frees bev and arms the next run.
 */
#include "lbproxy/lbp_check.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "common/cm_err.h"
#include "common/cm_log.h"
#include "common/cm_rand.h"
#include "common/cm_str.h"
#include "common/cm_time.h"

#define CHECK_LINE_MAX 64u /* bytes of a check response we look at */

static void check_timer_cb(evutil_socket_t fd, short what, void *arg);

/* ---- configuration ------------------------------------------------------ */

/*
 * https checks: TLS 1.2+, SNI = check->host when set, and no certificate
 * verification: backends are nodes addressed by IP, and the check asks
 * "does a TLS server answer this path with a good status", not "is this
 * certificate valid for the public name" (the health checker does that
 * against the load balancer).
 */
static SSL_CTX *check_tls_new(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    return ctx;
}

int lbp_check_conf_init(struct lbp_check_conf *conf, const struct cm_conf_check *check,
                        bool with_tls, struct event_base *base, const char *pool_name,
                        uint64_t *rng)
{
    memset(conf, 0, sizeof(*conf));
    conf->check = *check;
    conf->path = strdup(check->path != NULL ? check->path : "/healthz");
    if (conf->path == NULL)
        goto fail;
    if (check->host != NULL) {
        conf->host = strdup(check->host);
        if (conf->host == NULL)
            goto fail;
    }
    /* Only our own copies are reachable from the conf. */
    conf->check.path = conf->path;
    conf->check.host = conf->host;
    conf->check.expect_body = NULL;
    if (conf->check.interval_ms == 0)
        conf->check.interval_ms = 10000;
    if (conf->check.timeout_ms == 0)
        conf->check.timeout_ms = 3000;
    if (conf->check.rise == 0)
        conf->check.rise = 1;
    if (conf->check.fall == 0)
        conf->check.fall = 1;
    if (conf->check.status_min == 0 && conf->check.status_max == 0) {
        conf->check.status_min = 200;
        conf->check.status_max = 399;
    }
    if (with_tls && conf->check.type == CM_CHECK_HTTPS) {
        conf->tls = check_tls_new();
        if (conf->tls == NULL)
            goto fail;
    }
    conf->base = base;
    conf->pool_name = pool_name;
    conf->rng = rng;
    return CM_OK;
fail:
    lbp_check_conf_fini(conf);
    return CM_ENOMEM;
}

void lbp_check_conf_fini(struct lbp_check_conf *conf)
{
    SSL_CTX_free(conf->tls);
    free(conf->host);
    free(conf->path);
    memset(conf, 0, sizeof(*conf));
}

const char *lbp_check_state_name(enum lbp_check_state s)
{
    switch (s) {
    case LBP_CHECK_UP:
        return "up";
    case LBP_CHECK_DOWN:
        return "down";
    case LBP_CHECK_UNKNOWN:
    default:
        return "unknown";
    }
}

/* ---- lifetime ----------------------------------------------------------- */

void lbp_check_init(struct lbp_check *c, const char *name, const struct cm_addr *addr,
                    lbp_check_result_fn *on_result, void *arg)
{
    memset(c, 0, sizeof(*c));
    c->name = name;
    c->addr = addr;
    c->on_result = on_result;
    c->arg = arg;
    c->verdict = LBP_CHECK_UNKNOWN;
    c->phase = LBP_CHECK_IDLE;
}

void lbp_check_stop(struct lbp_check *c)
{
    if (c->bev != NULL) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    if (c->timer != NULL) {
        event_free(c->timer);
        c->timer = NULL;
    }
    c->phase = LBP_CHECK_IDLE;
    c->conf = NULL;
}

/* ---- scheduling --------------------------------------------------------- */

static void check_schedule(struct lbp_check *c, uint32_t delay_ms)
{
    struct timeval tv;

    if (c->timer == NULL) {
        c->timer = evtimer_new(c->conf->base, check_timer_cb, c);
        if (c->timer == NULL)
            return;
    }
    tv = cm_ms_to_timeval(delay_ms);
    evtimer_add(c->timer, &tv);
}

/* First check soon after a backend appears, spread over a tenth of the interval. */
void lbp_check_start(struct lbp_check *c, const struct lbp_check_conf *conf)
{
    uint32_t spread = conf->check.interval_ms / 10u + 1u;

    c->conf = conf;
    check_schedule(c, cm_rand_below(conf->rng, spread));
}

/* interval +- 10 % */
static uint32_t check_next_delay(const struct lbp_check_conf *conf)
{
    uint32_t iv = conf->check.interval_ms;
    uint32_t span = iv / 5u;

    if (span == 0)
        return iv;
    return iv - iv / 10u + cm_rand_below(conf->rng, span + 1u);
}

/* ---- one run ------------------------------------------------------------ */

/* The end of every run: rise/fall, the verdict to the backend, the next run. */
static void check_done(struct lbp_check *c, bool pass, const char *why)
{
    const struct lbp_check_conf *conf = c->conf;
    enum lbp_check_state before = c->verdict;

    if (c->bev != NULL) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    c->phase = LBP_CHECK_IDLE;
    c->runs++;
    if (pass) {
        c->fails = 0;
        c->passes++;
        if (c->verdict != LBP_CHECK_UP && c->passes >= conf->check.rise)
            c->verdict = LBP_CHECK_UP;
    } else {
        c->passes = 0;
        c->fails++;
        if (c->verdict != LBP_CHECK_DOWN && c->fails >= conf->check.fall)
            c->verdict = LBP_CHECK_DOWN;
    }
    c->on_result(c->arg, c->verdict);
    if (c->verdict != before && (before != LBP_CHECK_UNKNOWN || c->verdict == LBP_CHECK_DOWN))
        cm_log_info("backend check pool=\"%s\" backend=%s state=%s reason=%s", conf->pool_name,
                    c->name, c->verdict == LBP_CHECK_UP ? "up" : "down", why);
    check_schedule(c, check_next_delay(conf));
}

/* A bufferevent for one check: plain, or TLS that reports CONNECTED after the handshake. */
static struct bufferevent *check_bev_new(const struct lbp_check *c)
{
    const struct lbp_check_conf *conf = c->conf;
    struct bufferevent *bev;
    SSL *ssl;

    if (conf->tls == NULL)
        return bufferevent_socket_new(conf->base, -1, BEV_OPT_CLOSE_ON_FREE);
    ssl = SSL_new(conf->tls);
    if (ssl == NULL)
        return NULL;
    if (conf->host != NULL)
        SSL_set_tlsext_host_name(ssl, conf->host);
    /* libevent 2.1 frees @ssl itself if it fails after taking it; a leak
     * on the remaining ENOMEM path beats a double free. */
    bev = bufferevent_openssl_socket_new(conf->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (bev != NULL)
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

/* "HTTP/1.x NNN" */
static bool check_status_line(const char *line, size_t len, unsigned *status)
{
    uint64_t v;

    if (len < 12 || memcmp(line, "HTTP/1.", 7) != 0 || line[8] != ' ')
        return false;
    if (!cm_parse_u64_n(line + 9, 3, 999, &v) || v < 100)
        return false;
    if (len > 12 && line[12] != ' ' && line[12] != '\r')
        return false;
    *status = (unsigned)v;
    return true;
}

/* Judges the status line once there is enough of it (or at EOF). */
static void check_judge(struct lbp_check *c, struct bufferevent *bev, bool at_eof)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    char line[CHECK_LINE_MAX];
    size_t len = evbuffer_get_length(in);
    unsigned status = 0;

    if (!at_eof && len < 13)
        return; /* "HTTP/1.1 200" and one more byte: wait */
    if (len > sizeof(line) - 1)
        len = sizeof(line) - 1;
    evbuffer_copyout(in, line, len);
    line[len] = '\0';
    if (!check_status_line(line, len, &status)) {
        check_done(c, false, len == 0 ? "eof" : "bad-status-line");
        return;
    }
    check_done(c, status >= c->conf->check.status_min && status <= c->conf->check.status_max,
               "status");
}

static void check_read_cb(struct bufferevent *bev, void *arg)
{
    check_judge(arg, bev, false);
}

static void check_send_request(struct lbp_check *c)
{
    const struct lbp_check_conf *conf = c->conf;
    char host[CM_ADDR_STRLEN];

    if (conf->host != NULL)
        cm_strlcpy(host, conf->host, sizeof(host));
    else
        cm_strlcpy(host, c->name, sizeof(host));
    evbuffer_add_printf(bufferevent_get_output(c->bev),
                        "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: fedgslb-proxy-check\r\n"
                        "Accept: */*\r\nConnection: close\r\n\r\n",
                        conf->path, host);
}

static void check_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct lbp_check *c = arg;

    if (what & BEV_EVENT_CONNECTED) {
        /* tcp: connected is enough; http and https (handshake done) send a GET. */
        if (c->conf->check.type == CM_CHECK_TCP) {
            check_done(c, true, "connected");
            return;
        }
        check_send_request(c);
        bufferevent_enable(bev, EV_READ);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        check_judge(c, bev, true);
        return;
    }
    check_done(c, false, (what & BEV_EVENT_TIMEOUT) ? "timeout" : "error");
}

static void check_run(struct lbp_check *c)
{
    const struct lbp_check_conf *conf = c->conf;
    struct timeval tv;

    c->bev = check_bev_new(c);
    if (c->bev == NULL) {
        check_done(c, false, "nomem");
        return;
    }
    c->phase = LBP_CHECK_RUNNING;
    bufferevent_setcb(c->bev, check_read_cb, NULL, check_event_cb, c);
    /* One deadline for connect + request + status line: the timer. */
    tv = cm_ms_to_timeval(conf->check.timeout_ms);
    evtimer_add(c->timer, &tv);
    if (bufferevent_socket_connect(c->bev, (const struct sockaddr *)&c->addr->ss,
                                   (int)c->addr->len) != 0) {
        /* the bufferevent may already have reported through check_event_cb */
        if (c->phase == LBP_CHECK_RUNNING)
            check_done(c, false, "connect");
    }
}

static void check_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct lbp_check *c = arg;

    (void)fd;
    (void)what;
    if (c->conf == NULL)
        return;
    if (c->phase == LBP_CHECK_RUNNING) {
        check_done(c, false, "timeout");
        return;
    }
    check_run(c);
}

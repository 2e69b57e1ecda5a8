/* SPDX-License-Identifier: Apache-2.0 */
/* unit_http.h -- the fake API server of the health unit tests (libevent's
 * HTTP server on 127.0.0.1 at a free port) and a kubeconfig target at it. */
#ifndef TESTS_UNIT_HEALTH_UNIT_HTTP_H
#define TESTS_UNIT_HEALTH_UNIT_HTTP_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <event2/http.h>

#include "common/cm_err.h"
#include "health/hc_kubeconfig.h"

/* A server on @base answering every request with @cb(@arg); *port gets its port. */
static inline struct evhttp *unit_http_server(struct event_base *base,
                                              void (*cb)(struct evhttp_request *, void *),
                                              void *arg, int *port)
{
    struct evhttp *http = evhttp_new(base);
    struct evhttp_bound_socket *bs;
    struct sockaddr_in sin;
    socklen_t slen = sizeof(sin);

    assert_non_null(http);
    evhttp_set_gencb(http, cb, arg);
    bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
    assert_non_null(bs);
    assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &slen),
                     0);
    *port = ntohs(sin.sin_port);
    return http;
}

/* The target of a kubeconfig naming http://127.0.0.1:@port/@path, token "t". */
static inline struct hc_kube_target *unit_kube_target(int port, const char *path)
{
    struct hc_kube_target *t = NULL;
    char kc[512], err[256];

    snprintf(kc, sizeof(kc),
             "apiVersion: v1\nkind: Config\ncurrent-context: m\n"
             "clusters:\n- name: m\n  cluster: {server: 'http://127.0.0.1:%d/%s'}\n"
             "users:\n- name: m\n  user: {token: t}\n"
             "contexts:\n- name: m\n  context: {cluster: m, user: m}\n",
             port, path);
    if (hc_kubeconfig_load_mem("kc", kc, strlen(kc), NULL, HC_KUBECONFIG_NO_FILES, &t, err,
                               sizeof(err)) != CM_OK)
        fail_msg("kubeconfig: %s", err);
    return t;
}

#endif /* TESTS_UNIT_HEALTH_UNIT_HTTP_H */

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_echo.c -- the floor row of the DNS benchmark: a UDP responder that
 * sends every query back as its own response (QR set, nothing looked up,
 * nothing added), with the socket batching fedgslb-dnsd's workers use (see
 * dnsd/dns_server.c): wait for the socket to be readable, then recvmmsg
 * batches of DNS_ECHO_BATCH without blocking, each answered with one
 * sendmmsg, at most DNS_ECHO_BUDGET batches per wakeup. What a query costs
 * here is what the kernel and the batching cost; what fedgslb-dnsd spends
 * above it is its own work.
 *
 *   dns_echo ADDRESS PORT [SECONDS]
 *
 * Runs until SIGTERM/SIGINT, or for SECONDS. Benchmark tool, not a server:
 * one thread, one socket, no configuration.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define DNS_ECHO_BATCH  32   /* dnsd's UDP_BATCH */
#define DNS_ECHO_BUDGET 4    /* dnsd's UDP_BUDGET */
#define DNS_ECHO_MAX    4096 /* dnsd's UDP_REQ_MAX */

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

struct echo {
    int fd;
    struct mmsghdr msg[DNS_ECHO_BATCH];
    struct iovec iov[DNS_ECHO_BATCH];
    struct sockaddr_storage peer[DNS_ECHO_BATCH];
    unsigned char buf[DNS_ECHO_BATCH][DNS_ECHO_MAX];
};

/* Points the slots at their buffers; recvmmsg then rewrites only the
 * lengths of the slots it fills, which are reset before the next batch. */
static void echo_slots(struct echo *e, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        e->iov[i].iov_base = e->buf[i];
        e->iov[i].iov_len = DNS_ECHO_MAX;
        e->msg[i].msg_hdr.msg_name = &e->peer[i];
        e->msg[i].msg_hdr.msg_namelen = sizeof(e->peer[i]);
        e->msg[i].msg_hdr.msg_iov = &e->iov[i];
        e->msg[i].msg_hdr.msg_iovlen = 1;
        e->msg[i].msg_hdr.msg_control = NULL;
        e->msg[i].msg_hdr.msg_controllen = 0;
        e->msg[i].msg_hdr.msg_flags = 0;
    }
}

/* One batch: receive, flip each query into a response in place, send. */
static int echo_batch(struct echo *e)
{
    int n = recvmmsg(e->fd, e->msg, DNS_ECHO_BATCH, MSG_DONTWAIT, NULL);

    if (n <= 0)
        return 0;
    for (int i = 0; i < n; i++) {
        e->iov[i].iov_len = e->msg[i].msg_len;
        if (e->msg[i].msg_len >= 3)
            e->buf[i][2] |= 0x80; /* QR */
    }
    for (int sent = 0; sent < n;) {
        int k = sendmmsg(e->fd, e->msg + sent, (unsigned)(n - sent), MSG_DONTWAIT);
        if (k == -1) {
            if (errno == EINTR)
                continue;
            break; /* a full socket buffer drops the rest, as dnsd does */
        }
        sent += k;
    }
    echo_slots(e, (unsigned)n);
    return n;
}

int main(int argc, char **argv)
{
    struct sockaddr_in sin;
    struct epoll_event ev = {.events = EPOLLIN};
    struct echo *e;
    int ep, one = 1;
    unsigned long port;
    char *end;

    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: dns_echo ADDRESS PORT [SECONDS]\n");
        return 2;
    }
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    port = strtoul(argv[2], &end, 10);
    if (inet_pton(AF_INET, argv[1], &sin.sin_addr) != 1 || *end != '\0' || port == 0 ||
        port > 65535) {
        fprintf(stderr, "dns_echo: bad address or port\n");
        return 2;
    }
    sin.sin_port = htons((uint16_t)port);
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return 1;
    e->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (e->fd == -1 || setsockopt(e->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
        bind(e->fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
        perror("dns_echo: socket");
        return 1;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    ev.data.fd = e->fd;
    if (ep == -1 || epoll_ctl(ep, EPOLL_CTL_ADD, e->fd, &ev) == -1) {
        perror("dns_echo: epoll");
        return 1;
    }
    echo_slots(e, DNS_ECHO_BATCH);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    if (argc == 4)
        alarm((unsigned)strtoul(argv[3], NULL, 10));
    signal(SIGALRM, on_signal);
    while (!stop_flag) {
        struct epoll_event got;
        int r = epoll_wait(ep, &got, 1, 1000);

        if (r <= 0)
            continue;
        for (int b = 0; b < DNS_ECHO_BUDGET; b++) {
            if (echo_batch(e) < DNS_ECHO_BATCH)
                break;
        }
    }
    close(ep);
    close(e->fd);
    free(e);
    return 0;
}

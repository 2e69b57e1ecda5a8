/* SPDX-License-Identifier: Apache-2.0 */
/*
 * probe_bench.c -- what 2,000 data-plane probes cost the health checker.
 *
 * A child process serves HTTP (evhttp, GET anything -> 200 "ok") on N ports
 * of 127.0.0.1 and is pinned to CPU 1 when there is one; the parent pins
 * itself to CPU 0 and runs the probes (hc_probes on hc_http, as in
 * fedgslb-health): http GET /healthz, interval 1000 ms, timeout 500 ms, a
 * fresh connection per probe. After the run it prints probes, runs,
 * failures, skipped and deferred turns, the parent's CPU time (getrusage
 * user+sys) as % of one core, and start lateness (scheduled vs actual).
 *
 *   probe_bench [--seconds 20] [--probes 2000] [--ports 20]
 *               [--interval-ms 1000] [--timeout-ms 500] [--max-in-flight 512]
 *
 * Not a test: it asserts nothing about timings. Exit 1 on a setup error.
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_str.h"
#include "health/hc_http.h"
#include "health/hc_probe.h"

#define MAX_PORTS 256

struct opts {
    uint64_t seconds, probes, ports, interval_ms, timeout_ms, max_in_flight;
};

static double now_s(clockid_t clk)
{
    struct timespec ts;

    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void pin(int cpu)
{
    cpu_set_t set;

    if (cpu >= sysconf(_SC_NPROCESSORS_ONLN))
        return;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0)
        fprintf(stderr, "probe_bench: cannot pin to CPU %d: %s\n", cpu, strerror(errno));
}

static void serve(struct evhttp_request *req, void *arg)
{
    struct evbuffer *b = evbuffer_new();

    (void)arg;
    if (b == NULL) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add(b, "ok\n", 3);
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

/* The child: binds @n ports, writes them to @fd, serves until killed. */
static int child_main(uint64_t n, int fd)
{
    struct event_base *base = event_base_new();
    struct evhttp *http = base != NULL ? evhttp_new(base) : NULL;
    uint16_t ports[MAX_PORTS];

    prctl(PR_SET_PDEATHSIG, SIGTERM);
    pin(1);
    if (http == NULL)
        return 1;
    evhttp_set_gencb(http, serve, NULL);
    for (uint64_t i = 0; i < n; i++) {
        struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
        struct sockaddr_in sa;
        socklen_t len = sizeof(sa);

        if (bs == NULL ||
            getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &len) != 0)
            return 1;
        ports[i] = ntohs(sa.sin_port);
    }
    if (write(fd, ports, n * sizeof(ports[0])) != (ssize_t)(n * sizeof(ports[0])))
        return 1;
    close(fd);
    event_base_dispatch(base);
    return 0;
}

static bool parse_args(int argc, char **argv, struct opts *o)
{
    static const struct {
        const char *name;
        size_t off;
        uint64_t min, max;
    } opts[] = {
        {"--seconds", offsetof(struct opts, seconds), 1, 3600},
        {"--probes", offsetof(struct opts, probes), 1, 1000000},
        {"--ports", offsetof(struct opts, ports), 1, MAX_PORTS},
        {"--interval-ms", offsetof(struct opts, interval_ms), 10, 3600000},
        {"--timeout-ms", offsetof(struct opts, timeout_ms), 10, 60000},
        {"--max-in-flight", offsetof(struct opts, max_in_flight), 1, 100000},
    };

    *o = (struct opts){.seconds = 20,
                       .probes = 2000,
                       .ports = 20,
                       .interval_ms = 1000,
                       .timeout_ms = 500,
                       .max_in_flight = 512};
    for (int i = 1; i < argc; i++) {
        size_t k;

        for (k = 0; k < sizeof(opts) / sizeof(opts[0]); k++)
            if (strcmp(argv[i], opts[k].name) == 0)
                break;
        if (k == sizeof(opts) / sizeof(opts[0]) || i + 1 >= argc) {
            fprintf(stderr, "usage: probe_bench [--seconds N] [--probes N] [--ports N] "
                            "[--interval-ms N] [--timeout-ms N] [--max-in-flight N]\n");
            return false;
        }
        uint64_t *dst = (uint64_t *)((char *)o + opts[k].off);
        if (!cm_parse_u64(argv[++i], opts[k].max, dst) || *dst < opts[k].min) {
            fprintf(stderr, "probe_bench: %s: want %" PRIu64 "..%" PRIu64 "\n", opts[k].name,
                    opts[k].min, opts[k].max);
            return false;
        }
    }
    return true;
}

/* Probes whose last run failed, counted by reason (the first 8 reasons). */
struct reason {
    char text[HC_PROBE_ERR_MAX];
    size_t count;
};

static void tally(struct reason *r, size_t *n, const char *text)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(r[i].text, text) == 0) {
            r[i].count++;
            return;
        }
    }
    if (*n == 8)
        return;
    cm_strlcpy(r[*n].text, text, sizeof(r[*n].text));
    r[(*n)++].count = 1;
}

static void on_changed(void *arg)
{
    (void)arg;
}

static void run(const struct opts *o, const uint16_t *ports)
{
    struct event_base *base = event_base_new();
    struct hc_http *http = hc_http_new(base);
    struct hc_probes_params pp;
    struct hc_probes *ps;
    static char path[] = "/healthz";
    struct cm_conf_check c = {.type = CM_CHECK_HTTP,
                              .path = path,
                              .status_min = 200,
                              .status_max = 399,
                              .tls_verify = true,
                              .interval_ms = (uint32_t)o->interval_ms,
                              .timeout_ms = (uint32_t)o->timeout_ms,
                              .rise = 2,
                              .fall = 3};
    struct timeval tv = {.tv_sec = (time_t)o->seconds};
    struct hc_probes_stats st;
    double wall0, cpu0, wall, cpu;
    size_t up = 0, nreasons = 0;
    char svc[64], member[32];
    struct reason reasons[8];

    hc_probes_params_default(&pp);
    pp.max_in_flight = (uint32_t)o->max_in_flight;
    ps = hc_probes_new(base, http, &pp, on_changed, NULL);
    if (ps == NULL) {
        fprintf(stderr, "probe_bench: out of memory\n");
        exit(1);
    }
    wall0 = now_s(CLOCK_MONOTONIC);
    cpu0 = cpu_s();
    for (uint64_t i = 0; i < o->probes; i++) {
        snprintf(svc, sizeof(svc), "bench/svc%" PRIu64, i);
        snprintf(member, sizeof(member), "m%" PRIu64, i % 20);
        if (hc_probes_ensure(ps, svc, member, "127.0.0.1", ports[i % o->ports], &c, NULL) !=
            CM_OK) {
            fprintf(stderr, "probe_bench: hc_probes_ensure failed\n");
            exit(1);
        }
    }
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    wall = now_s(CLOCK_MONOTONIC) - wall0;
    cpu = cpu_s() - cpu0;
    hc_probes_get_stats(ps, &st);
    for (uint64_t i = 0; i < o->probes; i++) {
        const struct hc_probe_status *s;

        snprintf(svc, sizeof(svc), "bench/svc%" PRIu64, i);
        snprintf(member, sizeof(member), "m%" PRIu64, i % 20);
        s = hc_probes_get(ps, svc, member, "127.0.0.1");
        if (s != NULL && s->verdict == HC_PROBE_UP)
            up++;
        if (s != NULL && s->last_error[0] != '\0')
            tally(reasons, &nreasons, s->last_error);
    }
    printf("probe_bench: %" PRIu64 " probes on %" PRIu64 " ports of 127.0.0.1, http GET /healthz, "
           "interval %" PRIu64 " ms, timeout %" PRIu64 " ms, max in flight %" PRIu64 "\n",
           o->probes, o->ports, o->interval_ms, o->timeout_ms, o->max_in_flight);
    printf("wall %.1f s  probes %zu (up %zu)  runs %" PRIu64 " (%.0f/s)  failures %" PRIu64
           "  skipped %" PRIu64 "  deferred %" PRIu64 "\n",
           wall, st.probes, up, st.runs, (double)st.runs / wall, st.failures, st.skipped,
           st.deferred);
    printf("CPU (parent, user+sys) %.2f s = %.1f %% of one core  (%.1f us per run)\n", cpu,
           100.0 * cpu / wall, st.runs > 0 ? 1e6 * cpu / (double)st.runs : 0.0);
    printf("start lateness ms over %" PRIu64 " starts: mean %.3f  p50 <= %.3f  p99 <= %.3f  "
           "max %.3f\n",
           st.late_count, st.late_mean_ms, st.late_p50_ms, st.late_p99_ms, st.late_max_ms);
    for (size_t i = 0; i < nreasons; i++)
        printf("last result of %zu probes: %s\n", reasons[i].count, reasons[i].text);
    hc_probes_free(ps);
    hc_http_free(http);
    event_base_free(base);
}

int main(int argc, char **argv)
{
    struct opts o;
    uint16_t ports[MAX_PORTS];
    int fds[2], status;
    size_t got = 0;
    pid_t pid;

    if (!parse_args(argc, argv, &o))
        return 2;
    if (pipe(fds) != 0) {
        perror("pipe");
        return 1;
    }
    pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        close(fds[0]);
        _exit(child_main(o.ports, fds[1]));
    }
    close(fds[1]);
    while (got < o.ports * sizeof(ports[0])) {
        ssize_t n = read(fds[0], (char *)ports + got, o.ports * sizeof(ports[0]) - got);

        if (n <= 0) {
            fprintf(stderr, "probe_bench: the server child did not start\n");
            kill(pid, SIGTERM);
            waitpid(pid, NULL, 0);
            return 1;
        }
        got += (size_t)n;
    }
    close(fds[0]);
    pin(0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    run(&o, ports);
    curl_global_cleanup();
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* test_hc_incluster.c -- the in-cluster target from the pod's environment and
 * a ServiceAccount directory: URL forms, missing and hostile inputs. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/cm_err.h"
#include "health/hc_incluster.h"
#include "health/hc_kubeconfig.h"

#define CA "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

static char dir[] = "/tmp/test_hc_incluster.XXXXXX";

static void put(const char *name, const char *text)
{
    char p[PATH_MAX];
    FILE *f;

    snprintf(p, sizeof(p), "%s/%s", dir, name);
    f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void drop(const char *name)
{
    char p[PATH_MAX];

    snprintf(p, sizeof(p), "%s/%s", dir, name);
    unlink(p);
}

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(dir) == NULL)
        return -1;
    put("token", "  sa-token-123\n");
    put("ca.crt", CA);
    put("namespace", "fedgslb-system\n");
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    drop("token");
    drop("ca.crt");
    drop("namespace");
    return rmdir(dir);
}

static void test_ok(void **state)
{
    struct hc_kube_target *t = NULL;
    char err[256] = "";
    char want[PATH_MAX];

    (void)state;
    assert_int_equal(hc_incluster_load("usa", dir, &t, err, sizeof(err)), CM_OK);
    assert_string_equal(t->server, "https://10.96.0.1:443");
    assert_string_equal(t->token, "sa-token-123");
    snprintf(want, sizeof(want), "%s/token", dir);
    assert_string_equal(t->token_file, want); /* re-read per request */
    assert_string_equal(t->ca_pem, CA);
    assert_string_equal(t->namespace_, "fedgslb-system");
    assert_string_equal(t->context, "usa");
    hc_kube_target_free(t);

    setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1", 1);
    assert_int_equal(hc_incluster_load("usa", dir, &t, err, sizeof(err)), CM_OK);
    assert_string_equal(t->server, "https://[fd00:10:96::1]:443");
    hc_kube_target_free(t);
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
}

static void expect(const char *want)
{
    struct hc_kube_target *t = NULL;
    char err[512] = "";

    assert_int_not_equal(hc_incluster_load("usa", dir, &t, err, sizeof(err)), CM_OK);
    assert_null(t);
    if (strstr(err, want) == NULL)
        fail_msg("%s (want %s)", err, want);
    assert_null(strstr(err, "sa-token"));
}

static void test_errors(void **state)
{
    (void)state;
    unsetenv("KUBERNETES_SERVICE_PORT");
    expect("in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set");
    setenv("KUBERNETES_SERVICE_PORT", "99999", 1);
    expect("do not form a URL");
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    setenv("KUBERNETES_SERVICE_HOST", "evil.example/x?", 1);
    expect("do not form a URL");
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    put("token", "\n \n");
    expect("/token: file is empty");
    put("token", "sa-token-123");
    put("ca.crt", "not a certificate");
    expect("/ca.crt: no PEM certificate");
    drop("ca.crt");
    expect("/ca.crt: cannot read");
    put("ca.crt", CA);
    drop("token");
    expect("/token: cannot read");
    put("token", "sa-token-123");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok),
        cmocka_unit_test(test_errors),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}

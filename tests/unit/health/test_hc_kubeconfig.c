/* SPDX-License-Identifier: Apache-2.0 */
/* test_hc_kubeconfig.c -- kubeconfig loading: the credential styles, file
 * references, kubectl merge rules and every error message, word for word. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "common/cm_err.h"
#include "health/hc_exec.h"
#include "health/hc_kubeconfig.h"

#define CA_PEM "-----BEGIN CERTIFICATE-----\nMIIBfakeCAfakeCAfakeCA\n-----END CERTIFICATE-----\n"
#define CERT_PEM                                                                                   \
    "-----BEGIN CERTIFICATE-----\nMIIBfakeClientCertificate\n-----END CERTIFICATE-----\n"
#define KEY_PEM "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIs3cr3tKeY\n-----END EC PRIVATE KEY-----\n"
#define TOKEN   "s3cr3t-token-value"

struct fixture {
    char dir[64]; /* a fresh temporary directory */
};

static char *b64(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(4 * ((n + 2) / 3) + 1);

    assert_non_null(out);
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
    return out;
}

/* Writes @text to dir/name (creating subdirectories); returns the path. */
static const char *put(struct fixture *fx, const char *name, const char *text)
{
    static char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
    for (char *s = path + strlen(fx->dir) + 1; (s = strchr(s, '/')) != NULL; s++) {
        *s = '\0';
        mkdir(path, 0700);
        *s = '/';
    }
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static char *path_of(struct fixture *fx, const char *name)
{
    static char path[4][512];
    static int i;

    i = (i + 1) % 4;
    snprintf(path[i], sizeof(path[i]), "%s/%s", fx->dir, name);
    return path[i];
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_hc_kubeconfig.XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    char cmd[PATH_MAX + 16];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0)
        return -1;
    free(fx);
    return 0;
}

/* A kubeconfig as kubectl writes it, with @cluster and @user bodies spliced in. */
static char *kubeconfig(const char *ctx, const char *cluster_body, const char *user_body,
                        const char *current)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);

    assert_non_null(f);
    fprintf(f,
            "apiVersion: v1\nclusters:\n- cluster:\n%s  name: %s\ncontexts:\n- context:\n"
            "    cluster: %s\n    user: %s-admin\n  name: %s\ncurrent-context: %s\n"
            "kind: Config\npreferences: {}\nusers:\n- name: %s-admin\n  user:\n%s",
            cluster_body, ctx, ctx, ctx, ctx, current != NULL ? current : ctx, ctx, user_body);
    fclose(f);
    return out;
}

static int load(const char *paths, const char *ctx, struct hc_kube_target **t, char *err)
{
    return hc_kubeconfig_load(paths, ctx, t, err, HC_KUBECONFIG_ERR_MAX);
}

/* Loads and expects failure with exactly @want; secrets never leak. */
static void expect_error(const char *paths, const char *ctx, int rc_want, const char *want)
{
    struct hc_kube_target *t = NULL;
    char err[HC_KUBECONFIG_ERR_MAX];

    assert_int_equal(load(paths, ctx, &t, err), rc_want);
    assert_null(t);
    assert_string_equal(err, want);
    assert_null(strstr(err, TOKEN));
    assert_null(strstr(err, "s3cr3t"));
}

static void test_token_ca_data(void **state)
{
    struct fixture *fx = *state;
    char *ca = b64(CA_PEM), cl[1024], *kc;
    struct hc_kube_target *t = NULL;
    char err[HC_KUBECONFIG_ERR_MAX];

    snprintf(cl, sizeof(cl),
             "    certificate-authority-data: %s\n    server: https://127.0.0.1:6443/\n"
             "    tls-server-name: kubernetes\n    proxy-url: http://proxy:3128\n",
             ca);
    kc = kubeconfig("usa", cl, "    token: " TOKEN "\n", NULL);
    assert_int_equal(load(put(fx, "kc.yaml", kc), NULL, &t, err), CM_OK);
    assert_string_equal(t->context, "usa");
    assert_string_equal(t->cluster, "usa");
    assert_string_equal(t->user, "usa-admin");
    assert_string_equal(t->server, "https://127.0.0.1:6443");
    assert_null(t->namespace_);
    assert_int_equal(t->ca_pem_len, strlen(CA_PEM));
    assert_memory_equal(t->ca_pem, CA_PEM, t->ca_pem_len);
    assert_false(t->insecure_skip_tls_verify);
    assert_string_equal(t->tls_server_name, "kubernetes");
    assert_string_equal(t->proxy_url, "http://proxy:3128");
    assert_string_equal(t->token, TOKEN);
    assert_null(t->token_file);
    assert_null(t->client_cert_pem);
    assert_null(t->client_key_pem);
    assert_null(t->username);
    hc_kube_target_free(t);
    free(kc);
    free(ca);
}

static void test_insecure_token(void **state)
{
    struct fixture *fx = *state;
    char *kc =
        kubeconfig("eur", "    insecure-skip-tls-verify: true\n    server: https://10.0.0.1:443\n",
                   "    token: " TOKEN "\n", NULL);
    struct hc_kube_target *t = NULL;
    char err[HC_KUBECONFIG_ERR_MAX];

    assert_int_equal(load(put(fx, "kc.yaml", kc), "eur", &t, err), CM_OK);
    assert_true(t->insecure_skip_tls_verify);
    assert_null(t->ca_pem);
    assert_string_equal(t->server, "https://10.0.0.1:443");
    assert_string_equal(t->token, TOKEN);
    hc_kube_target_free(t);
    free(kc);
}

static void test_client_cert_data(void **state)
{
    struct fixture *fx = *state;
    char *ca = b64(CA_PEM), *cert = b64(CERT_PEM), *key = b64(KEY_PEM), cl[1024], us[1024];
    struct hc_kube_target *t = NULL;
    char err[HC_KUBECONFIG_ERR_MAX], *kc;

    snprintf(cl, sizeof(cl),
             "    certificate-authority-data: %s\n    server: https://127.0.0.1:6443\n", ca);
    snprintf(us, sizeof(us), "    client-certificate-data: %s\n    client-key-data: %s\n", cert,
             key);
    kc = kubeconfig("jpn", cl, us, NULL);
    assert_int_equal(load(put(fx, "kc.yaml", kc), NULL, &t, err), CM_OK);
    assert_int_equal(t->client_cert_pem_len, strlen(CERT_PEM));
    assert_string_equal(t->client_cert_pem, CERT_PEM);
    assert_int_equal(t->client_key_pem_len, strlen(KEY_PEM));
    assert_string_equal(t->client_key_pem, KEY_PEM);
    assert_null(t->token);
    hc_kube_target_free(t);
    free(kc);
    free(ca);
    free(cert);
    free(key);
}

static void test_token_file_and_relative_ca(void **state)
{
    struct fixture *fx = *state;
    char *kc = kubeconfig("usa",
                          "    certificate-authority: certs/ca.crt\n"
                          "    server: https://127.0.0.1:6443\n",
                          "    tokenFile: usa.token\n", NULL);
    struct hc_kube_target *t = NULL;
    char err[HC_KUBECONFIG_ERR_MAX], cwd[PATH_MAX];

    put(fx, "sub/certs/ca.crt", CA_PEM);
    put(fx, "sub/usa.token", "  " TOKEN "\n");
    put(fx, "sub/kc.yaml", kc);
    /* A relative kubeconfig path: references resolve against its directory. */
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(fx->dir), 0);
    assert_int_equal(load("sub/kc.yaml", NULL, &t, err), CM_OK);
    assert_int_equal(chdir(cwd), 0);
    assert_string_equal(t->token, TOKEN);
    assert_string_equal(t->token_file, path_of(fx, "sub/usa.token"));
    assert_string_equal(t->ca_pem, CA_PEM);
    hc_kube_target_free(t);
    free(kc);
}

static void test_merge_precedence(void **state)
{
    struct fixture *fx = *state;
    char paths[1024], *kc;
    struct hc_kube_target *t = NULL;
    char err[HC_KUBECONFIG_ERR_MAX];
    const char *a = "apiVersion: v1\nkind: Config\ncurrent-context: usa\n"
                    "clusters:\n- name: usa\n  cluster: {server: 'https://a.example:6443',"
                    " insecure-skip-tls-verify: yes}\n"
                    "contexts:\n- name: usa\n  context: {cluster: usa, user: u, namespace: web}\n"
                    "users:\n- name: u\n  user: {token: token-a}\n";
    const char *b = "apiVersion: v1\nkind: Config\ncurrent-context: eur\n"
                    "clusters:\n- name: usa\n  cluster: {server: 'https://b.example'}\n"
                    "- name: eur\n  cluster: {server: 'http://eur.example:8080'}\n"
                    "contexts:\n- name: usa\n  context: {cluster: eur, user: u}\n"
                    "- name: eur\n  context: {cluster: eur, user: u}\n"
                    "users:\n- name: u\n  user: {token: token-b}\n";

    put(fx, "b.yaml", b);
    kc = strdup(put(fx, "a.yaml", a));
    /* Missing files are skipped; the first current-context and names win. */
    snprintf(paths, sizeof(paths), "%s::%s:%s", path_of(fx, "missing.yaml"), kc,
             path_of(fx, "b.yaml"));
    assert_int_equal(load(paths, NULL, &t, err), CM_OK);
    assert_string_equal(t->context, "usa");
    assert_string_equal(t->server, "https://a.example:6443");
    assert_true(t->insecure_skip_tls_verify);
    assert_string_equal(t->namespace_, "web");
    assert_string_equal(t->token, "token-a");
    hc_kube_target_free(t);
    /* A context only the second file has still finds the first file's user. */
    assert_int_equal(load(paths, "eur", &t, err), CM_OK);
    assert_string_equal(t->server, "http://eur.example:8080");
    assert_string_equal(t->token, "token-a");
    hc_kube_target_free(t);
    /* The other order: b's current-context and b's entries. */
    snprintf(paths, sizeof(paths), "%s:%s", path_of(fx, "b.yaml"), kc);
    assert_int_equal(load(paths, NULL, &t, err), CM_OK);
    assert_string_equal(t->context, "eur");
    assert_string_equal(t->token, "token-b");
    hc_kube_target_free(t);
    assert_int_equal(load(paths, "usa", &t, err), CM_OK);
    assert_string_equal(t->cluster, "eur"); /* b's definition of context usa */
    hc_kube_target_free(t);
    free(kc);
}

static void test_current_context_default(void **state)
{
    struct fixture *fx = *state;
    struct hc_kube_target *t = NULL;
    char err[HC_KUBECONFIG_ERR_MAX];
    const char *kc = "clusters:\n- name: c1\n  cluster:\n    server: https://one\n"
                     "- name: c2\n  cluster:\n    server: https://two\n"
                     "contexts:\n- name: one\n  context:\n    cluster: c1\n"
                     "- name: two\n  context:\n    cluster: c2\n"
                     "current-context: two\n";
    const char *p = put(fx, "kc.yaml", kc);

    assert_int_equal(load(p, NULL, &t, err), CM_OK);
    assert_string_equal(t->context, "two");
    assert_string_equal(t->server, "https://two");
    assert_null(t->user); /* a context without a user is anonymous */
    hc_kube_target_free(t);
    assert_int_equal(load(p, "one", &t, err), CM_OK);
    assert_string_equal(t->server, "https://one");
    hc_kube_target_free(t);
    assert_int_equal(load(p, "", &t, err), CM_OK); /* "" = current-context too */
    assert_string_equal(t->context, "two");
    hc_kube_target_free(t);
}

static void test_errors_resolution(void **state)
{
    struct fixture *fx = *state;
    char want[2048];
    const char *p;

    p = put(fx, "kc.yaml",
            "kind: Config\nclusters:\n- name: usa\n  cluster: {server: 'https://x'}\n"
            "contexts:\n- name: usa\n  context: {cluster: usa, user: nobody}\n"
            "- name: nocl\n  context: {cluster: gone, user: nobody}\n"
            "- name: empty\n  context: {user: nobody}\n"
            "users:\n- name: u\n  user: {token: " TOKEN "}\n");
    snprintf(want, sizeof(want), "%s: context \"eur\" not found", p);
    expect_error(p, "eur", CM_ECONFIG, want);
    snprintf(want, sizeof(want), "%s: no context given and current-context is not set", p);
    expect_error(p, NULL, CM_ECONFIG, want);
    snprintf(want, sizeof(want), "%s: context \"usa\": user \"nobody\" not found", p);
    expect_error(p, "usa", CM_ECONFIG, want);
    snprintf(want, sizeof(want), "%s: context \"nocl\": cluster \"gone\" not found", p);
    expect_error(p, "nocl", CM_ECONFIG, want);
    snprintf(want, sizeof(want), "%s: context \"empty\": no cluster set", p);
    expect_error(p, "empty", CM_ECONFIG, want);
}

static void test_errors_data_and_files(void **state)
{
    struct fixture *fx = *state;
    char want[2048], *kc, *cert = b64(CERT_PEM), us[1024];
    const char *p;

    kc = kubeconfig("usa",
                    "    certificate-authority-data: LS0t!!notbase64\n    server: https://x\n",
                    "    token: " TOKEN "\n", NULL);
    p = put(fx, "kc.yaml", kc);
    snprintf(want, sizeof(want), "%s: cluster \"usa\": certificate-authority-data: invalid base64",
             p);
    expect_error(p, NULL, CM_EPARSE, want);
    free(kc);

    snprintf(us, sizeof(us), "    client-certificate-data: %s\n    client-key-data: czNjcjN0\n",
             cert);
    kc = kubeconfig("usa", "    server: https://x\n", us, NULL);
    p = put(fx, "kc.yaml", kc);
    snprintf(want, sizeof(want),
             "%s: context \"usa\": user \"usa-admin\": client-key-data: not PEM data", p);
    expect_error(p, NULL, CM_EPARSE, want);
    free(kc);

    snprintf(us, sizeof(us), "    client-certificate-data: %s\n    client-key-data: abc\n", cert);
    kc = kubeconfig("usa", "    server: https://x\n", us, NULL);
    p = put(fx, "kc.yaml", kc);
    snprintf(want, sizeof(want),
             "%s: context \"usa\": user \"usa-admin\": client-key-data: invalid base64", p);
    expect_error(p, NULL, CM_EPARSE, want);
    free(kc);

    kc = kubeconfig("usa", "    certificate-authority: nope.crt\n    server: https://x\n",
                    "    token: " TOKEN "\n", NULL);
    p = put(fx, "kc.yaml", kc);
    snprintf(want, sizeof(want),
             "%s: cluster \"usa\": certificate-authority %s: cannot read: No such file or "
             "directory",
             p, path_of(fx, "nope.crt"));
    expect_error(p, NULL, -ENOENT, want);
    free(kc);

    kc = kubeconfig("usa", "    server: https://x\n", "    tokenFile: /nonexistent/tok\n", NULL);
    p = put(fx, "kc.yaml", kc);
    snprintf(want, sizeof(want),
             "%s: context \"usa\": user \"usa-admin\": tokenFile /nonexistent/tok: cannot read: "
             "No such file or directory",
             p);
    expect_error(p, NULL, -ENOENT, want);
    free(kc);

    snprintf(us, sizeof(us), "    client-certificate-data: %s\n", cert);
    kc = kubeconfig("usa", "    server: https://x\n", us, NULL);
    p = put(fx, "kc.yaml", kc);
    snprintf(want, sizeof(want),
             "%s: context \"usa\": user \"usa-admin\": client-certificate is set without "
             "client-key",
             p);
    expect_error(p, NULL, CM_ECONFIG, want);
    free(kc);
    free(cert);
}

static void test_errors_server(void **state)
{
    struct fixture *fx = *state;
    char want[2048], *kc;
    const char *p;

    kc = kubeconfig("usa", "    server: ftp://x.example\n", "    token: " TOKEN "\n", NULL);
    p = put(fx, "kc.yaml", kc);
    snprintf(want, sizeof(want),
             "%s: cluster \"usa\": server \"ftp://x.example\" is not an http:// or https:// URL",
             p);
    expect_error(p, NULL, CM_ECONFIG, want);
    free(kc);
    kc = kubeconfig("usa", "    server: https://\n", "    token: " TOKEN "\n", NULL);
    p = put(fx, "kc.yaml", kc);
    snprintf(want, sizeof(want),
             "%s: cluster \"usa\": server \"https://\" is not an http:// or https:// URL", p);
    expect_error(p, NULL, CM_ECONFIG, want);
    free(kc);
    kc = kubeconfig("usa", "    insecure-skip-tls-verify: true\n", "    token: " TOKEN "\n", NULL);
    p = put(fx, "kc.yaml", kc);
    snprintf(want, sizeof(want), "%s: cluster \"usa\": server is not set", p);
    expect_error(p, NULL, CM_ECONFIG, want);
    free(kc);
}

static void test_errors_plugins(void **state)
{
    struct fixture *fx = *state;
    char want[2048], *kc;
    const char *p;
    struct hc_kube_target *t = NULL;
    char err[HC_KUBECONFIG_ERR_MAX];

    /* v1beta1 without interactiveMode: IfAvailable, run without a terminal. */
    kc = kubeconfig("jpn", "    server: https://x\n",
                    "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n"
                    "      command: aws\n      args: [eks, get-token]\n"
                    "      env: [{name: AWS_PROFILE, value: prod}]\n",
                    NULL);
    p = put(fx, "kc.yaml", kc);
    assert_int_equal(load(p, "jpn", &t, err), CM_OK);
    assert_non_null(t->exec);
    assert_null(t->token);
    assert_null(hc_exec_token(t->exec)); /* nothing until the plugin ran */
    hc_kube_target_free(t);
    free(kc);

    /* v1 requires interactiveMode, as client-go does. */
    kc = kubeconfig("jpn", "    server: https://x\n",
                    "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
                    "      command: aws\n",
                    NULL);
    p = put(fx, "kc.yaml", kc);
    snprintf(want, sizeof(want),
             "%s: context \"jpn\": user \"jpn-admin\": exec: interactiveMode must be specified "
             "for aws to use exec authentication plugin",
             p);
    expect_error(p, "jpn", CM_ECONFIG, want);
    free(kc);

    /* Always needs a terminal: refused. */
    kc = kubeconfig("jpn", "    server: https://x\n",
                    "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
                    "      command: aws\n      interactiveMode: Always\n",
                    NULL);
    p = put(fx, "kc.yaml", kc);
    snprintf(want, sizeof(want),
             "%s: context \"jpn\": user \"jpn-admin\": exec: interactiveMode Always needs a "
             "terminal for aws, and fedgslb-health runs without one (use Never or IfAvailable)",
             p);
    expect_error(p, "jpn", CM_ENOTSUP, want);
    free(kc);

    /* v1alpha1 was removed from client-go. */
    kc = kubeconfig("jpn", "    server: https://x\n",
                    "    exec:\n      apiVersion: client.authentication.k8s.io/v1alpha1\n"
                    "      command: aws\n",
                    NULL);
    p = put(fx, "kc.yaml", kc);
    snprintf(want, sizeof(want),
             "%s: context \"jpn\": user \"jpn-admin\": exec plugin: invalid apiVersion "
             "\"client.authentication.k8s.io/v1alpha1\"",
             p);
    expect_error(p, "jpn", CM_ECONFIG, want);
    free(kc);

    /* exec and a token: two methods. */
    kc = kubeconfig("jpn", "    server: https://x\n",
                    "    token: " TOKEN "\n    exec:\n      apiVersion: "
                    "client.authentication.k8s.io/v1\n      command: aws\n"
                    "      interactiveMode: Never\n",
                    NULL);
    p = put(fx, "kc.yaml", kc);
    snprintf(want, sizeof(want),
             "%s: context \"jpn\": user \"jpn-admin\": more than one authentication method "
             "(exec and token)",
             p);
    expect_error(p, "jpn", CM_ECONFIG, want);
    free(kc);

    /* env entries need a name. */
    kc = kubeconfig("jpn", "    server: https://x\n",
                    "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
                    "      command: aws\n      interactiveMode: Never\n"
                    "      env: [{value: x}]\n",
                    NULL);
    p = put(fx, "kc.yaml", kc);
    snprintf(want, sizeof(want),
             "%s: context \"jpn\": user \"jpn-admin\": exec: env must be a list of at most 256 "
             "{name, value} entries (name without '=')",
             p);
    expect_error(p, "jpn", CM_ECONFIG, want);
    free(kc);

    kc = kubeconfig(
        "gke", "    server: https://x\n",
        "    auth-provider:\n      name: gcp\n      config: {access-token: " TOKEN "}\n", NULL);
    p = put(fx, "kc.yaml", kc);
    snprintf(want, sizeof(want),
             "%s: context \"gke\": user \"gke-admin\": not supported: context gke uses an "
             "auth-provider plugin (removed from kubectl; use an exec credential plugin such as "
             "kubelogin or gke-gcloud-auth-plugin)",
             p);
    expect_error(p, NULL, CM_ENOTSUP, want);
    free(kc);
}

static void test_errors_files_and_syntax(void **state)
{
    struct fixture *fx = *state;
    char want[2048], paths[1024];
    const char *p;

    snprintf(paths, sizeof(paths), "%s:%s", path_of(fx, "a.yaml"), path_of(fx, "b.yaml"));
    snprintf(want, sizeof(want), "%s: no kubeconfig file found", paths);
    expect_error(paths, NULL, CM_ENOENT, want);
    expect_error("", NULL, CM_ENOENT, ": no kubeconfig file found");

    snprintf(want, sizeof(want), "%s: cannot read: Is a directory", fx->dir);
    expect_error(fx->dir, NULL, CM_EINVAL, want);

    p = put(fx, "kc.yaml", "apiVersion: v1\nclusters:\n- name: a\n  cluster: [\n");
    snprintf(want, sizeof(want),
             "%s:5:1: YAML syntax error: while parsing a flow node: did not find expected node "
             "content",
             p);
    expect_error(p, NULL, CM_EPARSE, want);

    p = put(fx, "kc.yaml", "kind: Config\nusers:\n  - name: x\n   user: {token: " TOKEN "}\n");
    snprintf(want, sizeof(want),
             "%s:4:4: YAML syntax error: while parsing a block collection: did not find "
             "expected '-' indicator",
             p);
    expect_error(p, NULL, CM_EPARSE, want);

    p = put(fx, "kc.yaml", "apiVersion: v1\nkind: Secret\n");
    snprintf(want, sizeof(want), "%s: kind \"Secret\" is not Config", p);
    expect_error(p, NULL, CM_ECONFIG, want);

    p = put(fx, "kc.yaml", "kind: Config\nclusters:\n  usa: {server: https://x}\n");
    snprintf(want, sizeof(want), "%s:3:3: clusters: expected a sequence", p);
    expect_error(p, NULL, CM_EPARSE, want);

    p = put(fx, "kc.yaml", "clusters:\n- name: usa\n  cluster:\n    server: [https://x]\n");
    snprintf(want, sizeof(want), "%s:4:13: clusters[0].cluster.server: expected a string", p);
    expect_error(p, NULL, CM_EPARSE, want);

    p = put(fx, "kc.yaml",
            "clusters:\n- name: usa\n  cluster:\n    insecure-skip-tls-verify: maybe\n");
    snprintf(want, sizeof(want),
             "%s:4:31: clusters[0].cluster.insecure-skip-tls-verify: expected a boolean", p);
    expect_error(p, NULL, CM_EPARSE, want);

    p = put(fx, "kc.yaml", "users:\n- user: {token: " TOKEN "}\n");
    snprintf(want, sizeof(want), "%s:2:3: users[0]: name is missing", p);
    expect_error(p, NULL, CM_EPARSE, want);
}

static void test_load_mem(void **state)
{
    const char *kc = "clusters:\n- name: c\n  cluster:\n    server: https://x\n"
                     "    certificate-authority: /etc/ca.crt\n"
                     "contexts:\n- name: k\n  context: {cluster: c}\ncurrent-context: k\n";
    struct hc_kube_target *t = NULL;
    char err[HC_KUBECONFIG_ERR_MAX];

    (void)state;
    assert_int_equal(hc_kubeconfig_load_mem("/m/kc.yaml", kc, strlen(kc), NULL,
                                            HC_KUBECONFIG_NO_FILES, &t, err, sizeof(err)),
                     CM_EACCES);
    assert_string_equal(err, "/m/kc.yaml: cluster \"c\": certificate-authority /etc/ca.crt: "
                             "cannot read: file access disabled");
    assert_null(t);
    /* An empty document is an empty config. */
    assert_int_equal(hc_kubeconfig_load_mem("e.yaml", "", 0, "x", 0, &t, err, sizeof(err)),
                     CM_ECONFIG);
    assert_string_equal(err, "e.yaml: context \"x\" not found");
    hc_kube_target_free(NULL);
}

static void test_duplicate_in_one_file_last_wins(void **state)
{
    const char *kc = "clusters:\n- name: c\n  cluster: {server: 'https://first'}\n"
                     "- name: c\n  cluster: {server: 'https://second'}\n"
                     "contexts:\n- name: k\n  context: {cluster: c}\n";
    struct hc_kube_target *t = NULL;
    char err[HC_KUBECONFIG_ERR_MAX];

    (void)state;
    assert_int_equal(
        hc_kubeconfig_load_mem("kc.yaml", kc, strlen(kc), "k", 0, &t, err, sizeof(err)), CM_OK);
    assert_string_equal(t->server, "https://second");
    hc_kube_target_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_token_ca_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insecure_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_cert_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_file_and_relative_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_current_context_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_resolution, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_data_and_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_plugins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_files_and_syntax, setup, teardown),
        cmocka_unit_test(test_load_mem),
        cmocka_unit_test(test_duplicate_in_one_file_last_wins),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

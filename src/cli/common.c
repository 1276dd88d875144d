/* common.c - helpers shared by the facenet commands. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

int cli_parse_int(const char *opt, const char *s, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "facenet: %s needs a whole number from %d to %d, not '%s'\n", opt, lo, hi, s ? s : "");
        return -1;
    }
    *out = (int)v;
    return 0;
}

int cli_common_option(cli_common *c, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    if (strcmp(a, "--int8") == 0) {
        c->int8 = 1;
        return 1;
    }
    if (strcmp(a, "--model") == 0 || strcmp(a, "--threads") == 0) {
        if (*i + 1 >= argc) {
            fprintf(stderr, "facenet: %s needs a value\n", a);
            return -1;
        }
        const char *v = argv[++*i];
        if (strcmp(a, "--model") == 0) {
            c->model = v;
            return 1;
        }
        return cli_parse_int("--threads", v, 0, 256, &c->threads) ? -1 : 1;
    }
    return 0;
}

facenet_ctx *cli_ctx(int threads) { return cli_ctx_precision(threads, 0); }

facenet_ctx *cli_ctx_precision(int threads, int int8) {
    facenet_ctx_params p = facenet_ctx_default_params();
    p.n_threads = threads;
    p.precision = int8 ? FACENET_PRECISION_INT8 : FACENET_PRECISION_F32;
    facenet_ctx *ctx = NULL;
    facenet_status st = facenet_ctx_create(&p, &ctx);
    if (st != FACENET_OK) {
        fprintf(stderr, "facenet: cannot create a context: %s\n", facenet_status_str(st));
        return NULL;
    }
    return ctx;
}

static int readable(const char *p) { return access(p, R_OK) == 0; }

/* The folder of the running executable into dir (cap >= PATH_MAX), or "". */
static void exe_folder(char *dir, size_t cap) {
    dir[0] = '\0';
    ssize_t n = readlink("/proc/self/exe", dir, cap - 1);
    if (n <= 0) {
        dir[0] = '\0';
        return;
    }
    dir[n] = '\0';
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        dir[0] = '\0';
}

const char *cli_find_tool(const char *explicit_path, const char *rel, char *buf, size_t cap) {
    if (explicit_path) return readable(explicit_path) ? explicit_path : NULL;
    if (readable(rel)) return rel;
    char dir[PATH_MAX];
    exe_folder(dir, sizeof dir);
    if (!dir[0] || !buf || cap == 0) return NULL;
    snprintf(buf, cap, "%.3800s/../%s", dir, rel);
    return readable(buf) ? buf : NULL;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double cli_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

const char *cli_find_model(const char *explicit_path, const char *file_name, char *buf, size_t cap) {
    if (explicit_path) {
        if (readable(explicit_path)) return explicit_path;
        fprintf(stderr, "facenet: model file %s cannot be read: %s\n", explicit_path, strerror(errno));
        return NULL;
    }
    char exe_dir[PATH_MAX];
    exe_folder(exe_dir, sizeof exe_dir);
    if (!buf || cap == 0) return NULL;
    const char *env = getenv("FACENET_MODEL_DIR");
    char dirs[5][PATH_MAX];
    int nd = 0;
    if (env && *env) snprintf(dirs[nd++], PATH_MAX, "%s", env);
    snprintf(dirs[nd++], PATH_MAX, "models");
    if (exe_dir[0]) {
        snprintf(dirs[nd++], PATH_MAX, "%.3800s/../models", exe_dir);
        snprintf(dirs[nd++], PATH_MAX, "%.3800s/../share/facenet/models", exe_dir);
    }
    for (int i = 0; i < nd; i++) {
        snprintf(buf, cap, "%s/%s", dirs[i], file_name);
        if (readable(buf)) return buf;
    }
    fprintf(stderr, "facenet: model %s not found (looked in", file_name);
    for (int i = 0; i < nd; i++) fprintf(stderr, "%s %s", i ? "," : "", dirs[i]);
    fprintf(stderr, ").\nRun scripts/setup.sh to fetch and convert the pretrained models, "
                    "or pass --model PATH.\n");
    return NULL;
}

facenet_model *cli_load_model(facenet_ctx *ctx, const char *explicit_path, const char *file_name) {
    char buf[PATH_MAX + 64];
    const char *path = cli_find_model(explicit_path, file_name, buf, sizeof buf);
    if (!path) return NULL;
    facenet_model *m = NULL;
    facenet_status st = facenet_model_load(ctx, path, &m);
    if (st != FACENET_OK) {
        cli_error("model", ctx, st);
        return NULL;
    }
    return m;
}

void cli_error(const char *cmd, facenet_ctx *ctx, facenet_status st) {
    const char *detail = facenet_ctx_error(ctx);
    fprintf(stderr, "facenet %s: %s\n", cmd, detail && *detail ? detail : facenet_status_str(st));
}

void cli_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

void cli_json_floats(FILE *f, const float *v, int n) {
    fputc('[', f);
    for (int i = 0; i < n; i++) fprintf(f, "%s%.9g", i ? "," : "", (double)v[i]);
    fputc(']', f);
}

void cli_format_duration(double s, char *buf, size_t cap) {
    long t = s > 0 && s < 1e7 ? (long)(s + 0.5) : 0;
    if (t >= 3600)
        snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, cap, "%ld:%02ld", t / 60, t % 60);
}

/* Run argv with stdin/stdout/stderr on /dev/null; its exit status, or -1. */
static int run_quiet(char *const argv[]) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        FILE *null = fopen("/dev/null", "r+");
        if (null) {
            dup2(fileno(null), 0);
            dup2(fileno(null), 1);
            dup2(fileno(null), 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

const char *cli_find_python(const char *explicit_python) {
    const char *env = getenv("FACENET_PYTHON");
    /* A pyenv or venv python3 first on PATH often lacks the packages that
     * Debian's python3-torch puts under its own interpreter. */
    const char *cands[4] = {explicit_python, env && *env ? env : NULL, "python3", "/usr/bin/python3"};
    for (int i = 0; i < 4; i++) {
        if (!cands[i]) continue;
        char *argv[] = {(char *)cands[i], "-c", "import torch, numpy", NULL};
        if (run_quiet(argv) == 0) return cands[i];
        if (i == 0) return NULL; /* an explicit choice is not second-guessed */
    }
    return NULL;
}

double cli_json_number(const char *line, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (!p) return -1;
    char *end;
    double v = strtod(p + strlen(pat), &end);
    return end == p + strlen(pat) ? -1 : v;
}

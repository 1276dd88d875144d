/*
 * bench_train.c - `facenet bench train`: the training step of the
 * ResNet-29 (forward with batch statistics, triplet loss, backward,
 * optimizer update) timed by facenet_train_bench, and in the same run the
 * same step in PyTorch (tools/bench/torch_train_step.py) when a Python with
 * torch is there, with the ratio.
 *
 * Machines are shared and timings swing by tens of percent, so the time is
 * split into rounds, each running ours and then PyTorch back to back, and
 * the figures are the medians of the rounds' medians. PyTorch runs as one
 * process per round (its import is not timed; it prints one JSON line).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

#define MAX_ROUNDS 20

typedef struct options {
    const char *arch, *python, *script;
    int batch, threads, rounds, no_torch, json;
    double seconds;
} options;

static int parse_options(int argc, char **argv, options *o) {
    *o = (options){"resnet29", NULL, NULL, 48, 0, 3, 0, 0, 8.0};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--no-torch") == 0) {
            o->no_torch = 1;
            continue;
        }
        if (strcmp(a, "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "facenet bench train: %s needs a value (or is unknown)\n", a);
            return -1;
        }
        i++;
        if (strcmp(a, "--arch") == 0) {
            if (strcmp(v, "resnet29") != 0 && strcmp(v, "small") != 0) {
                fprintf(stderr, "facenet bench train: --arch is resnet29 or small, not '%s'\n", v);
                return -1;
            }
            o->arch = v;
        } else if (strcmp(a, "--batch") == 0) {
            if (cli_parse_int(a, v, 2, 1024, &o->batch)) return -1;
        } else if (strcmp(a, "--threads") == 0) {
            if (cli_parse_int(a, v, 1, 256, &o->threads)) return -1;
        } else if (strcmp(a, "--rounds") == 0) {
            if (cli_parse_int(a, v, 1, MAX_ROUNDS, &o->rounds)) return -1;
        } else if (strcmp(a, "--seconds") == 0) {
            char *end;
            o->seconds = strtod(v, &end);
            if (end == v || *end || !(o->seconds > 0 && o->seconds <= 600)) {
                fprintf(stderr, "facenet bench train: --seconds takes a number of seconds in (0, 600]\n");
                return -1;
            }
        } else if (strcmp(a, "--python") == 0) {
            o->python = v;
        } else if (strcmp(a, "--torch-script") == 0) {
            o->script = v;
        } else {
            fprintf(stderr, "facenet bench train: unknown option %s\n", a);
            return -1;
        }
    }
    return 0;
}

/* Run argv and keep the last line it prints on stdout (its stderr goes
 * through); 0 if it exited with status 0. */
static int run_capture(char *const argv[], char *line, size_t cap) {
    int fd[2];
    if (pipe(fd) != 0) return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]), close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]), close(fd[1]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    char buf[8192];
    line[0] = 0;
    if (f) {
        while (fgets(buf, sizeof buf, f))
            if (buf[0] == '{') {
                size_t n = strlen(buf);
                if (n >= cap) n = cap - 1;
                memcpy(line, buf, n);
                line[n] = 0;
            }
        fclose(f);
    } else {
        close(fd[0]);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 && line[0] ? 0 : -1;
}

/* One PyTorch round: its best format's median ms per step, and each
 * format's; -1 if it failed. */
static double torch_round(const options *o, const char *python, const char *script, int threads, double *cl,
                          double *nchw, char *version, size_t vcap) {
    char b[16], t[16], s[32], line[4096];
    snprintf(b, sizeof b, "%d", o->batch);
    snprintf(t, sizeof t, "%d", threads);
    snprintf(s, sizeof s, "%.3f", o->seconds);
    char *argv[] = {(char *)python, (char *)script, "--batch", b, "--threads", t, "--seconds", s, NULL};
    if (run_capture(argv, line, sizeof line) != 0) return -1;
    const char *cl_at = strstr(line, "\"channels_last\""), *nchw_at = strstr(line, "\"nchw\"");
    *cl = cl_at ? cli_json_number(cl_at, "ms_per_step") : -1;
    *nchw = nchw_at ? cli_json_number(nchw_at, "ms_per_step") : -1;
    const char *v = strstr(line, "\"torch\": \"");
    if (v) snprintf(version, vcap, "%.*s", (int)strcspn(v + 10, "\""), v + 10);
    /* Its best format ("ms_per_step" at the top level comes last). */
    if (*cl > 0 && (*nchw <= 0 || *cl <= *nchw)) return *cl;
    return *nchw > 0 ? *nchw : -1;
}

int cli_bench_train(int argc, char **argv) {
    options o;
    if (parse_options(argc, argv, &o)) return CLI_USAGE;
    facenet_ctx *ctx = cli_ctx(o.threads);
    if (!ctx) return CLI_FAIL;
    const int threads = facenet_ctx_threads(ctx);

    /* PyTorch's side, when there is one: it builds the ResNet-29 only. */
    const char *python = NULL, *script = NULL;
    char sbuf[PATH_MAX], why[256] = "";
    if (o.no_torch) {
        snprintf(why, sizeof why, "--no-torch");
    } else if (strcmp(o.arch, "resnet29") != 0) {
        snprintf(why, sizeof why, "the PyTorch script builds the ResNet-29 only");
    } else if (!(python = cli_find_python(o.python))) {
        snprintf(why, sizeof why, "no python3 that imports torch and numpy (apt-get install python3-torch)");
    } else if (!(script = cli_find_tool(o.script, "tools/bench/torch_train_step.py", sbuf, sizeof sbuf))) {
        snprintf(why, sizeof why, "tools/bench/torch_train_step.py not found (--torch-script)");
        python = NULL;
    }

    double load[2] = {0, 0};
    getloadavg(load, 1);
    if (!o.json) {
        printf("training step: %s, batch %d, %d thread%s, backend %s\n", o.arch, o.batch, threads,
               threads > 1 ? "s" : "", facenet_backend_name());
        if (!python) printf("PyTorch: not run (%s)\n", why);
        printf("%d rounds of %.0f s per engine, each running ours and then PyTorch; medians of the rounds' "
               "medians\n",
               o.rounds, o.seconds);
        printf(" round   ours ms/step  (forward backward update)   torch:cl torch:nchw   speed-up\n");
    }
    double ours[MAX_ROUNDS], theirs[MAX_ROUNDS], fwd[MAX_ROUNDS], bwd[MAX_ROUNDS], upd[MAX_ROUNDS];
    int n_theirs = 0, rc = CLI_OK;
    char version[64] = "";
    for (int r = 0; r < o.rounds; r++) {
        facenet_train_bench_result res;
        facenet_status st = facenet_train_bench(ctx, o.arch, o.batch, o.seconds, &res);
        if (st != FACENET_OK) {
            cli_error("bench train", ctx, st);
            rc = CLI_FAIL;
            break;
        }
        ours[r] = res.ms_median, fwd[r] = res.ms_forward, bwd[r] = res.ms_backward, upd[r] = res.ms_update;
        double cl = -1, nchw = -1, best = -1;
        if (python) {
            best = torch_round(&o, python, script, threads, &cl, &nchw, version, sizeof version);
            if (best > 0)
                theirs[n_theirs++] = best;
            else
                fprintf(stderr, "facenet bench train: round %d: %s %s failed (see its messages above)\n", r + 1,
                        python, script);
        }
        if (!o.json) {
            printf("%6d %14.1f  (%7.1f %8.1f %6.1f)  ", r + 1, ours[r], fwd[r], bwd[r], upd[r]);
            if (best > 0)
                printf("%10.1f %10.1f %9.2fx\n", cl, nchw, best / ours[r]);
            else
                printf("%10s %10s %10s\n", "-", "-", "-");
            fflush(stdout);
        }
    }
    getloadavg(&load[1], 1);
    if (rc == CLI_OK) {
        const double mo = cli_median(ours, o.rounds), mt = n_theirs ? cli_median(theirs, n_theirs) : -1;
        if (o.json) {
            printf("{\"arch\": \"%s\", \"batch\": %d, \"threads\": %d, \"backend\": ", o.arch, o.batch, threads);
            cli_json_string(stdout, facenet_backend_name());
            printf(", \"rounds\": %d, \"ms_per_step\": %.1f, \"faces_per_s\": %.1f, \"ms_forward\": %.1f, "
                   "\"ms_backward\": %.1f, \"ms_update\": %.1f",
                   o.rounds, mo, o.batch * 1e3 / mo, cli_median(fwd, o.rounds), cli_median(bwd, o.rounds),
                   cli_median(upd, o.rounds));
            if (mt > 0) printf(", \"torch_ms_per_step\": %.1f, \"speed_up\": %.3f", mt, mt / mo);
            printf(", \"load\": [%.2f, %.2f]}\n", load[0], load[1]);
        } else {
            printf("ours: %.1f ms per step, %.1f faces/s", mo, o.batch * 1e3 / mo);
            if (mt > 0)
                printf("; PyTorch %s: %.1f ms per step, %.1f faces/s: %.2fx", version, mt, o.batch * 1e3 / mt,
                       mt / mo);
            printf(" (load average %.1f -> %.1f)\n", load[0], load[1]);
        }
    }
    facenet_ctx_free(ctx);
    return rc;
}

/*
 * checkpoint.c - writing and reading training checkpoints (checkpoint.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/checkpoint.h"

#define NAME_MAX_LEN 200

/* A decimal whole number in [0, max], digits only. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out) {
    if (!s || !*s || strlen(s) > 20) return 0;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return 0;
        const uint64_t d = (uint64_t)(*p - '0');
        if (v > (max - d) / 10) return 0;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

static int parse_hex64(const char *s, uint64_t *out) {
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        const char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return 0;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return 1;
}

static const char *need(const fn_st_file *f, const char *key, fn_error *e) {
    const char *v = fn_st_meta(f, key);
    if (!v) fn_fail(e, FACENET_ERR_FORMAT, "not a facenet checkpoint: no '%s' in its metadata", key);
    return v;
}

facenet_status fn_ckpt_meta_read(const fn_st_file *f, fn_ckpt_meta *m, fn_error *e) {
    memset(m, 0, sizeof *m);
    const char *format = need(f, "format", e);
    if (!format) return e->status;
    if (strcmp(format, FN_CKPT_FORMAT) != 0)
        return fn_fail(e, FACENET_ERR_FORMAT, "not a facenet checkpoint (format '%.40s')", format);
    const char *version = need(f, "checkpoint_version", e);
    if (!version) return e->status;
    if (strcmp(version, FN_CKPT_VERSION) != 0)
        return fn_fail(e, FACENET_ERR_UNSUPPORTED, "checkpoint version '%.20s'; this library reads %s", version,
                       FN_CKPT_VERSION);
    const char *arch = need(f, "architecture", e), *size = need(f, "input_size", e),
               *dim = need(f, "embedding_size", e), *step = need(f, "step", e), *seed = need(f, "seed", e),
               *rng = need(f, "rng", e), *opt = need(f, "optimizer", e);
    if (!arch || !size || !dim || !step || !seed || !rng || !opt) return e->status;
    uint64_t v;
    if (strlen(arch) == 0 || strlen(arch) >= sizeof m->architecture)
        return fn_fail(e, FACENET_ERR_FORMAT, "checkpoint: architecture '%.40s' is not a name", arch);
    snprintf(m->architecture, sizeof m->architecture, "%s", arch);
    if (!parse_u64(size, 4096, &v) || v < 1)
        return fn_fail(e, FACENET_ERR_FORMAT, "checkpoint: input_size '%.20s' is not 1..4096", size);
    m->input_size = (int)v;
    if (!parse_u64(dim, 65536, &v) || v < 1)
        return fn_fail(e, FACENET_ERR_FORMAT, "checkpoint: embedding_size '%.20s' is not 1..65536", dim);
    m->embedding_size = (int)v;
    if (!parse_u64(step, (uint64_t)FN_CKPT_MAX_STEP, &v))
        return fn_fail(e, FACENET_ERR_FORMAT, "checkpoint: step '%.30s' is not a step number", step);
    m->step = (int64_t)v;
    if (!parse_u64(seed, UINT64_MAX, &m->seed))
        return fn_fail(e, FACENET_ERR_FORMAT, "checkpoint: seed '%.30s' is not a 64-bit number", seed);
    int ok = strlen(rng) == 4 * 16 + 3;
    for (int i = 0; ok && i < 4; i++) {
        ok = parse_hex64(rng + 17 * i, &m->rng.s[i]) && (i == 3 || rng[17 * i + 16] == ':');
    }
    if (!ok || (m->rng.s[0] | m->rng.s[1] | m->rng.s[2] | m->rng.s[3]) == 0)
        return fn_fail(e, FACENET_ERR_FORMAT, "checkpoint: rng '%.80s' is not 4 ':'-separated 16-digit hex words",
                       rng);
    if (strcmp(opt, "adagrad") && strcmp(opt, "sgd") && strcmp(opt, "adam"))
        return fn_fail(e, FACENET_ERR_FORMAT, "checkpoint: optimizer '%.20s' is not adagrad, sgd or adam", opt);
    snprintf(m->optimizer, sizeof m->optimizer, "%s", opt);
    return FACENET_OK;
}

facenet_status fn_ckpt_write(const char *path, fn_tnet *net, fn_optim *opt, const fn_ckpt_meta *m, fn_error *e) {
    const int np = fn_tnet_n_params(net), ns = opt ? fn_optim_n_state(opt) : 0;
    const size_t n = (size_t)np + (size_t)ns;
    fn_st_entry *ent = calloc(n ? n : 1, sizeof *ent);
    char *names = calloc(n ? n : 1, NAME_MAX_LEN + 8);
    if (!ent || !names) {
        free(ent);
        free(names);
        return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory writing a checkpoint");
    }
    for (size_t i = 0; i < n; i++) {
        const int is_param = i < (size_t)np;
        fn_param *p = is_param ? fn_tnet_param(net, (int)i) : fn_optim_state(opt, (int)(i - (size_t)np));
        char *nm = names + i * (NAME_MAX_LEN + 8);
        snprintf(nm, NAME_MAX_LEN + 8, "%s/%s", is_param ? "param" : "optim", p->name);
        ent[i] = (fn_st_entry){nm, FN_DTYPE_F32, p->rank, p->shape, p->value};
    }
    char size[16], dim[16], step[24], seed[24], rng[80];
    snprintf(size, sizeof size, "%d", m->input_size);
    snprintf(dim, sizeof dim, "%d", m->embedding_size);
    snprintf(step, sizeof step, "%lld", (long long)m->step);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)m->seed);
    snprintf(rng, sizeof rng, "%016llx:%016llx:%016llx:%016llx", (unsigned long long)m->rng.s[0],
             (unsigned long long)m->rng.s[1], (unsigned long long)m->rng.s[2], (unsigned long long)m->rng.s[3]);
    const char *meta[] = {"format",     FN_CKPT_FORMAT, "checkpoint_version", FN_CKPT_VERSION,
                          "architecture", m->architecture, "input_size",     size,
                          "embedding_size", dim,          "step",             step,
                          "seed",       seed,           "rng",              rng,
                          "optimizer",  m->optimizer};
    facenet_status st = fn_st_write(path, ent, n, meta, sizeof meta / sizeof meta[0] / 2, e);
    free(ent);
    free(names);
    return st;
}

static facenet_status restore_one(const fn_st_file *f, const char *prefix, fn_param *p, fn_error *e) {
    char nm[NAME_MAX_LEN + 8];
    snprintf(nm, sizeof nm, "%s/%s", prefix, p->name);
    const fn_st_tensor *t = fn_st_find(f, nm);
    if (!t) return fn_fail(e, FACENET_ERR_MODEL, "the checkpoint has no tensor '%s': another network?", nm);
    int same = t->dtype == FN_DTYPE_F32 && t->ndim == p->rank && t->nelem == p->size;
    for (int d = 0; same && d < p->rank; d++) same = t->shape[d] == p->shape[d];
    if (!same)
        return fn_fail(e, FACENET_ERR_MODEL, "the checkpoint's '%s' is not F32 of the network's shape", nm);
    return fn_st_to_f32(t, p->value, p->size, e);
}

facenet_status fn_ckpt_restore(const fn_st_file *f, fn_tnet *net, fn_optim *opt, fn_error *e) {
    const int np = fn_tnet_n_params(net), ns = opt ? fn_optim_n_state(opt) : 0;
    if (fn_st_count(f) != (size_t)np + (size_t)ns)
        return fn_fail(e, FACENET_ERR_MODEL,
                       "the checkpoint holds %zu tensors; this network and optimizer have %d: another network, "
                       "optimizer or moving average of the weights?",
                       fn_st_count(f), np + ns);
    for (int i = 0; i < np; i++)
        if (restore_one(f, "param", fn_tnet_param(net, i), e) != FACENET_OK) return e->status;
    for (int i = 0; i < ns; i++)
        if (restore_one(f, "optim", fn_optim_state(opt, i), e) != FACENET_OK) return e->status;
    return FACENET_OK;
}

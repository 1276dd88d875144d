/*
 * test_tnet.c - the trainable network as a facenet model: what
 * fn_tnet_save writes loads through facenet_model_load and embeds, through
 * the ordinary inference path (preprocessing, backend, graph), exactly what
 * fn_tnet_forward computes in inference mode, for both architectures and
 * for a network fine-tuned from the pretrained ResNet-29; and freezing.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "engine/backward.h"
#include "model/model.h"
#include "nets/preprocess.h"
#include "nets/resnet29.h"
#include "testutil.h"
#include "train/train.h"

#define NSE_MAX 1e-8

static facenet_ctx *CTX;
static fn_exec EX;
static fn_arena ARENA;

static int setup(void **state) {
    (void)state;
    facenet_ctx_params cp = facenet_ctx_default_params();
    cp.n_threads = 2;
    if (facenet_ctx_create(&cp, &CTX) != FACENET_OK) return -1;
    return fn_exec_init(&EX, fn_backend_default(), CTX->pool, &ARENA) == 0 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    fn_exec_release(&EX);
    fn_arena_free(&ARENA);
    facenet_ctx_free(CTX);
    return 0;
}

/* n random chips of side s, and their network input as the inference path
 * makes it. */
static uint8_t *chips_make(int n, int s, facenet_image *chips, float *x) {
    uint8_t *px = malloc((size_t)n * s * s * 3);
    assert_non_null(px);
    uint64_t st = 12345;
    for (size_t i = 0; i < (size_t)n * s * s * 3; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        px[i] = (uint8_t)(st >> 56);
    }
    const fn_norm norm = {{fn_resnet29_mean[0], fn_resnet29_mean[1], fn_resnet29_mean[2]}, 255.0f};
    for (int i = 0; i < n; i++) {
        chips[i] = (facenet_image){s, s, 3, px + (size_t)i * s * s * 3};
        fn_arena_reset(&ARENA);
        assert_int_equal(fn_to_input(&EX, &chips[i], s, 1, &norm, x + (size_t)i * s * s * 3), 0);
    }
    fn_arena_reset(&ARENA);
    return px;
}

/* Embeddings of net (inference mode) and of the model at path (facenet's
 * inference path) on the same chips: equal to rounding. */
static void compare_with_model(fn_tnet *net, const char *path, const char *arch) {
    const int n = 3, s = fn_tnet_input_size(net), dim = fn_tnet_dim(net);
    facenet_image chips[3];
    float *x = malloc(sizeof(float) * (size_t)n * s * s * 3), *a = malloc(sizeof(float) * n * dim),
          *b = malloc(sizeof(float) * n * dim);
    uint8_t *px = chips_make(n, s, chips, x);
    fn_error e;
    assert_int_equal(fn_tnet_forward(net, &EX, x, n, a, 0, &e), 0);
    facenet_model *m;
    assert_int_equal(facenet_model_load(CTX, path, &m), FACENET_OK);
    assert_string_equal(facenet_model_architecture(m), arch);
    assert_int_equal(facenet_model_input_size(m), s);
    assert_int_equal(facenet_model_embedding_dim(m), dim);
    facenet_session *ss;
    assert_int_equal(facenet_session_create(CTX, m, &ss), FACENET_OK);
    assert_int_equal(facenet_embed_chips(ss, chips, n, b, FACENET_EMBED_RAW), FACENET_OK);
    double nse = test_nse(b, a, (size_t)n * dim);
    printf("%s at %d px: fn_tnet_forward vs the loaded model: nse %.3g (|emb[0]| %.3g)\n", arch, s, nse,
           (double)fabsf(a[0]));
    assert_true(nse < NSE_MAX);
    facenet_session_free(ss);
    facenet_model_free(m);
    free(x), free(a), free(b), free(px);
}

static void tmp_path(char *buf, size_t cap) {
    snprintf(buf, cap, "/tmp/facenet_test_tnet_%d.safetensors", (int)getpid());
}

/* A fresh network, its batch norm running averages moved by training
 * passes, saved (batch norm folded) and loaded. */
static void fresh_case(const char *arch, int size, int batch) {
    fn_error e;
    fn_tnet *net = fn_tnet_create_size(arch, size, 3, &e);
    assert_non_null(net);
    const int s = fn_tnet_input_size(net), dim = fn_tnet_dim(net);
    float *x = malloc(sizeof(float) * (size_t)batch * s * s * 3), *emb = malloc(sizeof(float) * batch * dim);
    test_fill_random(x, (size_t)batch * s * s * 3, 5, -0.5f, 0.5f);
    for (int k = 0; k < 2; k++) assert_int_equal(fn_tnet_forward(net, &EX, x, batch, emb, 1, &e), 0);
    char path[128];
    tmp_path(path, sizeof path);
    static const char *const meta[] = {"model_id", "test-tnet", NULL};
    assert_int_equal(fn_tnet_save(net, path, meta, &e), 0);
    compare_with_model(net, path, strcmp(arch, "small") ? "dlib_resnet29" : "facenet_small");
    facenet_model *m;
    assert_int_equal(facenet_model_load(CTX, path, &m), FACENET_OK);
    assert_string_equal(facenet_model_meta(m, "model_id"), "test-tnet");
    facenet_model_free(m);
    remove(path);
    fn_tnet_free(net);
    free(x), free(emb);
}

static void test_small_roundtrip(void **state) {
    (void)state;
    fresh_case("small", 0, 4);
    fresh_case("small", 40, 2); /* odd planes on the way: 40 -> 20 -> 10 -> 5 -> 3 */
}

static void test_resnet29_roundtrip(void **state) {
    (void)state;
    fresh_case("resnet29", 0, 2);
}

/* Fine-tuning: the pretrained model as a trainable network computes what
 * the model computes, and saved again, still does. */
static void test_finetune_pretrained(void **state) {
    (void)state;
    const char *path = test_model_path("dlib_resnet29.safetensors");
    if (!path) return;
    facenet_model *m;
    assert_int_equal(facenet_model_load(CTX, path, &m), FACENET_OK);
    fn_error e;
    fn_tnet *net = fn_tnet_from_model(m, &e);
    assert_non_null(net);
    facenet_model_free(m);
    assert_string_equal(fn_tnet_arch(net), "resnet29");
    compare_with_model(net, path, "dlib_resnet29");
    char out[128];
    tmp_path(out, sizeof out);
    assert_int_equal(fn_tnet_save(net, out, NULL, &e), 0);
    compare_with_model(net, out, "dlib_resnet29");
    remove(out);
    fn_tnet_free(net);
}

/* Frozen stages get no gradient and keep their running averages; the rest
 * learns. */
static void test_freeze(void **state) {
    (void)state;
    fn_error e;
    fn_tnet *net = fn_tnet_create_size("small", 32, 9, &e);
    assert_non_null(net);
    fn_tnet_freeze_stages(net, 3);
    const int n = 4, s = 32, dim = fn_tnet_dim(net);
    float *x = malloc(sizeof(float) * n * s * s * 3), emb[4 * 128], d[4 * 128];
    test_fill_random(x, (size_t)n * s * s * 3, 8, -1.0f, 1.0f);
    test_fill_random(d, (size_t)n * dim, 9, -1.0f, 1.0f);
    assert_int_equal(fn_tnet_forward(net, &EX, x, n, emb, 1, &e), 0);
    assert_int_equal(fn_tnet_backward(net, &EX, d, &e), 0);
    int frozen = 0, learning = 0;
    for (int i = 0; i < fn_tnet_n_params(net); i++) {
        fn_param *p = fn_tnet_param(net, i);
        double g = 0.0;
        for (size_t j = 0; p->grad && j < p->size; j++) g += fabs(p->grad[j]);
        if (strstr(p->name, "bn/mean") && p->frozen) {
            for (size_t j = 0; j < p->size; j++) assert_close(p->value[j], 0.0, 0.0);
        }
        if (!p->grad) continue;
        if (p->frozen) {
            frozen++;
            assert_close(g, 0.0, 0.0);
        } else if (strstr(p->name, "filters") || !strcmp(p->name, "fc")) {
            learning++;
            if (!(g > 0.0)) fail_msg("%s has no gradient", p->name);
        }
    }
    assert_true(frozen > 0 && learning > 0);
    /* Stages 0-2 are the stem, the 32 block and the 64 stage. */
    for (int i = 0; i < fn_tnet_n_params(net); i++) {
        fn_param *p = fn_tnet_param(net, i);
        int early = !strncmp(p->name, "stem", 4) || !strncmp(p->name, "res32", 5) || !strncmp(p->name, "res64", 5);
        assert_int_equal(p->frozen, early);
    }
    fn_tnet_free(net);
    free(x);
}

static void test_errors(void **state) {
    (void)state;
    fn_error e;
    fn_error_clear(&e);
    assert_null(fn_tnet_create("nonesuch", 1, &e));
    assert_true(strstr(e.msg, "nonesuch") != NULL);
    assert_null(fn_tnet_create_size("resnet29", 96, 1, &e));
    assert_null(fn_tnet_create_size("small", 8, 1, &e));
    fn_tnet *net = fn_tnet_create_size("small", 16, 1, &e);
    assert_non_null(net);
    float d[128] = {0};
    assert_int_equal(fn_tnet_backward(net, &EX, d, &e), -1); /* no training forward yet */
    float x[16 * 16 * 3] = {0}, emb[128];
    assert_int_equal(fn_tnet_forward(net, &EX, x, 1, emb, 0, &e), 0);
    assert_int_equal(fn_tnet_backward(net, &EX, d, &e), -1); /* an inference one */
    fn_tnet_free(net);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_roundtrip), cmocka_unit_test(test_resnet29_roundtrip),
        cmocka_unit_test(test_finetune_pretrained), cmocka_unit_test(test_freeze), cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

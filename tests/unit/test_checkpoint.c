/*
 * test_checkpoint.c - training checkpoints (src/train/checkpoint.c): a
 * network and its optimizer state written and restored by name, the
 * metadata read back exactly, and refusals with reasons for a checkpoint of
 * another network or optimizer and for bad metadata.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#include "train/checkpoint.h"

static char g_path[64];

static int setup(void **state) {
    (void)state;
    snprintf(g_path, sizeof g_path, "/tmp/fn_ckpt_%d.safetensors", (int)getpid());
    return 0;
}

static int teardown(void **state) {
    (void)state;
    unlink(g_path);
    return 0;
}

static fn_optim *adagrad(fn_tnet *net) {
    fn_optim_params op;
    memset(&op, 0, sizeof op);
    op.kind = FN_OPTIM_ADAGRAD;
    op.eps = 0.1f;
    fn_error e;
    fn_optim *o = fn_optim_create(&op, net, &e);
    assert_non_null(o);
    return o;
}

/* Change every value so that a restore is visible. */
static void scramble(fn_tnet *net, fn_optim *o, float v) {
    for (int i = 0; i < fn_tnet_n_params(net); i++) {
        fn_param *p = fn_tnet_param(net, i);
        for (size_t k = 0; k < p->size; k++) p->value[k] = v + (float)(k % 7);
    }
    for (int i = 0; i < fn_optim_n_state(o); i++) {
        fn_param *p = fn_optim_state(o, i);
        for (size_t k = 0; k < p->size; k++) p->value[k] = v * 2 + (float)(k % 5);
    }
}

static void test_round_trip(void **state) {
    (void)state;
    fn_error e;
    fn_tnet *a = fn_tnet_create_size("small", 16, 1, &e), *b = fn_tnet_create_size("small", 16, 2, &e);
    assert_non_null(a);
    assert_non_null(b);
    fn_optim *oa = adagrad(a), *ob = adagrad(b);
    scramble(a, oa, 0.25f);
    fn_ckpt_meta m;
    memset(&m, 0, sizeof m);
    snprintf(m.architecture, sizeof m.architecture, "%s", fn_tnet_arch(a));
    m.input_size = 16;
    m.embedding_size = fn_tnet_dim(a);
    m.step = 1234567;
    m.seed = 18446744073709551615ull;
    fn_rng_seed(&m.rng, 9);
    snprintf(m.optimizer, sizeof m.optimizer, "adagrad");
    assert_int_equal(fn_ckpt_write(g_path, a, oa, &m, &e), FACENET_OK);

    fn_st_file *f = NULL;
    assert_int_equal(fn_st_open(g_path, &f, &e), FACENET_OK);
    fn_ckpt_meta back;
    assert_int_equal(fn_ckpt_meta_read(f, &back, &e), FACENET_OK);
    assert_string_equal(back.architecture, m.architecture);
    assert_int_equal(back.input_size, 16);
    assert_int_equal(back.step, 1234567);
    assert_true(back.seed == m.seed);
    assert_memory_equal(&back.rng, &m.rng, sizeof m.rng);
    assert_int_equal(fn_ckpt_restore(f, b, ob, &e), FACENET_OK);
    for (int i = 0; i < fn_tnet_n_params(a); i++)
        assert_memory_equal(fn_tnet_param(a, i)->value, fn_tnet_param(b, i)->value,
                            sizeof(float) * fn_tnet_param(a, i)->size);
    for (int i = 0; i < fn_optim_n_state(oa); i++)
        assert_memory_equal(fn_optim_state(oa, i)->value, fn_optim_state(ob, i)->value,
                            sizeof(float) * fn_optim_state(oa, i)->size);
    /* Without the optimizer state (another optimizer's network): refused. */
    fn_optim_params sp;
    memset(&sp, 0, sizeof sp);
    sp.kind = FN_OPTIM_ADAM;
    sp.beta1 = 0.9f;
    sp.beta2 = 0.999f;
    sp.eps = 1e-8f;
    fn_optim *adam = fn_optim_create(&sp, b, &e);
    assert_non_null(adam);
    assert_int_equal(fn_ckpt_restore(f, b, adam, &e), FACENET_ERR_MODEL);
    assert_non_null(strstr(e.msg, "another network, optimizer or moving average"));
    fn_optim_free(adam);
    fn_st_close(f);

    /* Another input size has the same tensors; another network does not. */
    fn_tnet *r = fn_tnet_create_size("small", 24, 3, &e);
    fn_optim *orr = adagrad(r);
    assert_int_equal(fn_st_open(g_path, &f, &e), FACENET_OK);
    assert_int_equal(fn_ckpt_restore(f, r, orr, &e), FACENET_OK); /* the caller checks input_size */
    fn_st_close(f);
    fn_optim_free(orr);
    fn_tnet_free(r);

    fn_optim_free(oa);
    fn_optim_free(ob);
    fn_tnet_free(a);
    fn_tnet_free(b);
}

static void test_bad_meta(void **state) {
    (void)state;
    /* A model file is not a checkpoint. */
    const float v[2] = {1, 2};
    const int64_t shape[1] = {2};
    fn_st_entry t = {"fc", FN_DTYPE_F32, 1, shape, v};
    const char *model_meta[] = {"format", "facenet"};
    fn_error e;
    assert_int_equal(fn_st_write(g_path, &t, 1, model_meta, 1, &e), FACENET_OK);
    fn_st_file *f = NULL;
    fn_ckpt_meta m;
    assert_int_equal(fn_st_open(g_path, &f, &e), FACENET_OK);
    assert_int_equal(fn_ckpt_meta_read(f, &m, &e), FACENET_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "not a facenet checkpoint"));
    fn_st_close(f);
    /* A step that is not a number. */
    const char *bad[] = {"format", FN_CKPT_FORMAT, "checkpoint_version", "1", "architecture", "small",
                         "input_size", "64", "embedding_size", "128", "step", "12x", "seed", "1",
                         "rng", "0000000000000001:0000000000000002:0000000000000003:0000000000000004",
                         "optimizer", "adagrad"};
    assert_int_equal(fn_st_write(g_path, &t, 1, bad, 9, &e), FACENET_OK);
    assert_int_equal(fn_st_open(g_path, &f, &e), FACENET_OK);
    assert_int_equal(fn_ckpt_meta_read(f, &m, &e), FACENET_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "step '12x'"));
    fn_st_close(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_meta, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

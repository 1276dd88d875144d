/*
 * test_optim.c - the optimizers against steps worked by hand, on two
 * parameters of a real network: "fc" (weight decay applies) and a batch
 * norm gamma (it does not). Each case sets the values and gradients,
 * steps, and compares; and the moving average of the weights.
 */
#include <math.h>
#include <string.h>

#include "testutil.h"
#include "train/train.h"

static fn_tnet *NET;
static fn_param *FC, *GAMMA;

static int setup(void **state) {
    (void)state;
    fn_error e;
    NET = fn_tnet_create_size("small", 16, 1, &e);
    if (!NET) return -1;
    for (int i = 0; i < fn_tnet_n_params(NET); i++) {
        fn_param *p = fn_tnet_param(NET, i);
        if (!strcmp(p->name, "fc")) FC = p;
        if (!strcmp(p->name, "res64_1/conv1/bn/gamma")) GAMMA = p;
    }
    return FC && GAMMA && FC->decay == 1 && GAMMA->decay == 0 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    fn_tnet_free(NET);
    return 0;
}

/* Both params' first two entries: value 1, gradient 0.5. */
static void prime(void) {
    for (int k = 0; k < 2; k++) FC->value[k] = GAMMA->value[k] = 1.0f, FC->grad[k] = GAMMA->grad[k] = 0.5f;
}

static fn_optim *make(fn_optim_kind kind, float momentum, float eps, float wd, float clip) {
    fn_optim_params p = {kind, momentum, 0.9f, 0.999f, eps, wd, clip, 0};
    fn_error e;
    fn_optim *o = fn_optim_create(&p, NET, &e);
    assert_non_null(o);
    return o;
}

static void test_sgd_momentum(void **state) {
    (void)state;
    fn_optim *o = make(FN_OPTIM_SGD, 0.9f, 0.0f, 0.0f, 0.0f);
    prime();
    fn_optim_step(o, 0.1f); /* v = 0.5, w = 1 - 0.05 */
    assert_close(FC->value[0], 0.95, 1e-6);
    assert_close(FC->grad[0], 0.0, 0.0); /* zeroed */
    FC->grad[0] = 0.5f;
    fn_optim_step(o, 0.1f); /* v = 0.45 + 0.5, w = 0.95 - 0.095 */
    assert_close(FC->value[0], 0.855, 1e-6);
    fn_optim_free(o);
}

static void test_adagrad(void **state) {
    (void)state;
    fn_optim *o = make(FN_OPTIM_ADAGRAD, 0.0f, 0.1f, 0.0f, 0.0f);
    prime();
    fn_optim_step(o, 0.05f); /* acc = 0.1 + 0.25, w = 1 - 0.05 * 0.5 / sqrt(0.35) */
    assert_close(FC->value[0], 1.0 - 0.025 / sqrt(0.35), 1e-6);
    assert_close(GAMMA->value[1], 1.0 - 0.025 / sqrt(0.35), 1e-6);
    FC->grad[0] = -0.5f;
    fn_optim_step(o, 0.05f); /* acc = 0.6 */
    assert_close(FC->value[0], 1.0 - 0.025 / sqrt(0.35) + 0.025 / sqrt(0.6), 1e-6);
    /* The accumulator is state, by name. */
    int found = 0;
    for (int i = 0; i < fn_optim_n_state(o); i++) {
        fn_param *s = fn_optim_state(o, i);
        if (!strcmp(s->name, "fc/accum")) {
            found = 1;
            assert_close(s->value[0], 0.6, 1e-6);
            assert_close(s->value[1], 0.35, 1e-6);
        }
    }
    assert_true(found);
    fn_optim_free(o);
}

static void test_adam(void **state) {
    (void)state;
    fn_optim *o = make(FN_OPTIM_ADAM, 0.0f, 1e-8f, 0.0f, 0.0f);
    prime();
    /* m = 0.05, v = 0.00025; bias-corrected 0.5 and 0.25: w -= lr * 0.5 / 0.5. */
    fn_optim_step(o, 0.01f);
    assert_close(FC->value[0], 0.99, 1e-6);
    /* Second step, g = 0.5 again: m = 0.095, v = 0.00049975; corrected by
     * 0.19 and 0.001999: 0.5 and 0.25 again. */
    FC->grad[0] = 0.5f;
    fn_optim_step(o, 0.01f);
    assert_close(FC->value[0], 0.98, 1e-6);
    int have_m = 0, have_v = 0, have_step = 0;
    for (int i = 0; i < fn_optim_n_state(o); i++) {
        fn_param *s = fn_optim_state(o, i);
        have_m |= !strcmp(s->name, "fc/m");
        have_v |= !strcmp(s->name, "fc/v");
        if (!strcmp(s->name, "optim/step")) {
            have_step = 1;
            assert_close(s->value[0], 2.0, 0.0);
        }
    }
    assert_true(have_m && have_v && have_step);
    fn_optim_free(o);
}

static void test_decay_clip_freeze(void **state) {
    (void)state;
    /* Weight decay 0.1 on fc only: g = 0.5 + 0.1 * 1. */
    fn_optim *o = make(FN_OPTIM_SGD, 0.0f, 0.0f, 0.1f, 0.0f);
    prime();
    fn_optim_step(o, 0.1f);
    assert_close(FC->value[0], 1.0 - 0.1 * 0.6, 1e-6);
    assert_close(GAMMA->value[0], 1.0 - 0.1 * 0.5, 1e-6);
    fn_optim_free(o);

    /* Clipping: a gradient of norm 5 capped at 1 is scaled by 0.2. */
    o = make(FN_OPTIM_SGD, 0.0f, 0.0f, 0.0f, 1.0f);
    FC->value[0] = FC->value[1] = 1.0f;
    FC->grad[0] = 3.0f;
    FC->grad[1] = 4.0f;
    assert_close(fn_optim_step(o, 1.0f), 5.0, 1e-5);
    assert_close(FC->value[0], 0.4, 1e-6);
    assert_close(FC->value[1], 0.2, 1e-6);
    fn_optim_free(o);

    /* Frozen: nothing moves, the gradient is still cleared, the norm
     * counts only what learns. */
    fn_tnet_freeze_stages(NET, 100);
    o = make(FN_OPTIM_SGD, 0.0f, 0.0f, 0.1f, 0.0f);
    prime();
    assert_close(fn_optim_step(o, 1.0f), 0.0, 0.0);
    assert_close(FC->value[0], 1.0, 0.0);
    assert_close(FC->grad[0], 0.0, 0.0);
    fn_optim_free(o);
    fn_tnet_freeze_stages(NET, 0);
    assert_false(FC->frozen);
}

/* The moving average (decay 0.2) starts at the weights the optimizer was
 * made with and follows min(0.2, (1 + t) / (10 + t)): 2/11 after the first
 * step, 0.2 after the second. SGD at 0.1 with gradient 0.5 takes fc from 1
 * to 0.95 and 0.9. Swapping puts the average in the network and back. */
static void test_ema(void **state) {
    (void)state;
    prime();
    fn_optim_params p = {FN_OPTIM_SGD, 0.0f, 0.9f, 0.999f, 0.0f, 0.0f, 0.0f, 0.2f};
    fn_error e;
    fn_optim *o = fn_optim_create(&p, NET, &e);
    assert_non_null(o);
    fn_optim *plain = make(FN_OPTIM_SGD, 0.0f, 0.0f, 0.0f, 0.0f);
    assert_int_equal(fn_optim_n_state(o), fn_optim_n_state(plain) + fn_tnet_n_params(NET));
    assert_int_equal(fn_optim_swap_ema(plain), 0);
    fn_optim_free(plain);
    const float gamma0 = GAMMA->value[0];
    GAMMA->grad[0] = 0.0f;
    fn_optim_step(o, 0.1f);
    const double d1 = 2.0 / 11.0, a1 = d1 * 1.0 + (1 - d1) * 0.95;
    FC->grad[0] = 0.5f;
    GAMMA->grad[0] = 0.0f;
    fn_optim_step(o, 0.1f);
    const double a2 = 0.2 * a1 + 0.8 * 0.9;
    assert_close(FC->value[0], 0.9, 1e-6);
    assert_int_equal(fn_optim_swap_ema(o), 1);
    assert_close(FC->value[0], a2, 1e-6);
    assert_close(GAMMA->value[0], gamma0, 1e-6); /* a tensor that did not move */
    fn_optim_swap_ema(o);
    assert_close(FC->value[0], 0.9, 1e-6);
    fn_optim_free(o);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_momentum),
        cmocka_unit_test(test_adagrad),
        cmocka_unit_test(test_adam),
        cmocka_unit_test(test_decay_clip_freeze),
        cmocka_unit_test(test_ema),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * backward.h - the training side of the engine: the backward pass of every
 * op of engine.h, batch normalization (an op only training needs), and the
 * forward convolution for weights that change between calls.
 *
 * Each backward kernel sits in the file of its forward op (src/engine/ref/);
 * the ones worth a fast version (convolution, pooling) go through the
 * backend's training slots (engine.h, struct fn_backend) and fall back to the
 * reference, like the forward ops.
 *
 * Conventions, the same for every op:
 *   - dy is the loss gradient with respect to the op's output, dx the one
 *     with respect to its input: dx is overwritten;
 *   - parameter gradients (dw, dbias, dscale, dshift, dgamma, dbeta) are
 *     ADDED to, so that a network accumulates into its gradient buffers;
 *     any of them may be NULL when not wanted;
 *   - shapes are the forward op's: dx has x's shape, dy has y's.
 *
 *   fn_conv2d_train(ex, &x, &d, &z);                  // forward, weights change
 *   ...
 *   fn_conv2d_backward_data(ex, &dz, &d, &dx);        // dL/dx
 *   fn_conv2d_backward_weights(ex, &x, &dz, &d, dw, NULL);  // dL/dw +=
 */
#ifndef FN_BACKWARD_H
#define FN_BACKWARD_H

#include "engine/engine.h"

/* ---- convolution (ref/conv2d.c) */

/* fn_conv2d for weights that change between calls (training): the fast
 * backend's training slot, which caches nothing by weight contents, or the
 * reference. The per-op conv2d slot may not be used for that: it keeps the
 * weights it reordered for as long as the descriptor looks the same. */
void fn_conv2d_train(const fn_exec *ex, const fn_tensor *x, const fn_conv_desc *d, fn_tensor *y);
/* dx = the gradient of conv(x) (no epilogue) with respect to x, given dy. */
void fn_conv2d_backward_data(const fn_exec *ex, const fn_tensor *dy, const fn_conv_desc *d, fn_tensor *dx);
void fn_ref_conv2d_backward_data(const fn_exec *ex, const fn_tensor *dy, const fn_conv_desc *d, fn_tensor *dx);
/* dw += dL/dw ([kh][kw][cin][cout], depthwise [kh][kw][c]); dbias += the sum
 * of dy per channel (the gradient of a bias added right after the conv). */
void fn_conv2d_backward_weights(const fn_exec *ex, const fn_tensor *x, const fn_tensor *dy, const fn_conv_desc *d,
                                float *dw, float *dbias);
void fn_ref_conv2d_backward_weights(const fn_exec *ex, const fn_tensor *x, const fn_tensor *dy,
                                    const fn_conv_desc *d, float *dw, float *dbias);
/* Both at once (dx or dw may be NULL; no bias): what the two calls above
 * give, with the work they share done once where the backend can. */
void fn_conv2d_backward_both(const fn_exec *ex, const fn_tensor *x, const fn_tensor *dy, const fn_conv_desc *d,
                             fn_tensor *dx, float *dw);
/* The whole op fn_conv2d(x, d) -> y with its epilogue (bias, scale, shift,
 * activation): y is its output (for the activation's derivative). dx may be
 * NULL. Scratch from ex->arena; 0, or -1 if out of memory. */
int fn_conv2d_backward(const fn_exec *ex, const fn_tensor *x, const fn_conv_desc *d, const fn_tensor *y,
                       const fn_tensor *dy, fn_tensor *dx, float *dw, float *dbias, float *dscale, float *dshift);

/* ---- elementwise (ref/elementwise.c) */

/* Through an activation, from its output y: dx may alias dy. */
void fn_activate_backward(const fn_tensor *y, const fn_tensor *dy, fn_act act, float alpha, fn_tensor *dx);
/* Through x*scale+shift (x: its input); dx may alias dy; scale may be NULL. */
void fn_scale_shift_backward(const fn_tensor *x, const fn_tensor *dy, const float *scale, fn_tensor *dx,
                             float *dscale, float *dshift);
/* dbias += the sum of dy per channel. */
void fn_bias_add_backward(const fn_tensor *dy, float *dbias);
/* Through fn_add_zero_extended: da and db (either may be NULL) get the part
 * of dy that their input covers. */
void fn_add_zero_extended_backward(const fn_tensor *dy, fn_tensor *da, fn_tensor *db);
/* Through fn_l2_normalize, given its input x (rows x dim); dx may alias dy. */
void fn_l2_normalize_backward(const float *x, const float *dy, int rows, int dim, float eps, float *dx);

/* ---- pooling (ref/pool.c) */

/* The gradient goes to the window's maximum, the first one in window order
 * on ties (the one the forward pass picked). */
void fn_maxpool_backward(const fn_exec *ex, const fn_tensor *x, const fn_tensor *dy, int k, int stride,
                         fn_padding pad, fn_tensor *dx);
void fn_ref_maxpool_backward(const fn_exec *ex, const fn_tensor *x, const fn_tensor *dy, int k, int stride,
                             fn_padding pad, fn_tensor *dx);
void fn_avgpool_backward(const fn_exec *ex, const fn_tensor *dy, int k, int stride, fn_padding pad,
                         fn_tensor *dx);
void fn_ref_avgpool_backward(const fn_exec *ex, const fn_tensor *dy, int k, int stride, fn_padding pad,
                             fn_tensor *dx);
void fn_global_mean_backward(const fn_tensor *dy, fn_tensor *dx);

/* ---- dense (ref/dense.c): x [n, in], w [in][out]; dx may be NULL. */
void fn_dense_backward(const fn_exec *ex, const fn_tensor *x, const float *w, const fn_tensor *dy, fn_tensor *dx,
                       float *dw, float *dbias);

/* ---- batch normalization (ref/batchnorm.c), per channel over N, H, W
 * (at most 1024 channels).
 *
 * Training: normalize with the batch's mean and (biased) variance, move the
 * running averages toward them (running = (1 - momentum) * running +
 * momentum * batch, the variance unbiased there), and keep the batch mean
 * and 1/sqrt(var + eps) for the backward pass (save_mean, save_invstd, [c];
 * NULL running pointers: not updated). act: FN_ACT_NONE, or FN_ACT_RELU
 * applied to y in the same pass. 0, or -1 if out of memory (or another
 * act). */
int fn_batchnorm_train(const fn_exec *ex, const fn_tensor *x, const float *gamma, const float *beta, float eps,
                       float momentum, float *running_mean, float *running_var, float *save_mean,
                       float *save_invstd, fn_act act, fn_tensor *y);
/* Inference: y = (x - mean) / sqrt(var + eps) * gamma + beta; y may alias x. */
void fn_batchnorm_infer(const fn_exec *ex, const fn_tensor *x, const float *gamma, const float *beta,
                        const float *mean, const float *var, float eps, fn_tensor *y);
/* Backward of the training form, from its input x and the saved statistics;
 * relu_y: the forward's output when it had a ReLU (dy counts only where it
 * is > 0), else NULL. dx may alias dy. 0, or -1 if out of memory. */
int fn_batchnorm_backward(const fn_exec *ex, const fn_tensor *x, const fn_tensor *relu_y, const fn_tensor *dy,
                          const float *gamma, const float *save_mean, const float *save_invstd, fn_tensor *dx,
                          float *dgamma, float *dbeta);

#endif /* FN_BACKWARD_H */

/*
 * graph.h - a network as a straight list of ops, built once when a model is
 * bound and run for every batch.
 *
 * Why: run one op at a time, every intermediate tensor has to be NHWC. A
 * backend whose kernels want another layout (oneDNN's nChw16c) would then
 * convert twice per layer, which at batch 1 costs as much as the arithmetic.
 * Given the whole list, a backend can keep activations in its own layout,
 * fuse epilogues and residual adds into the convolutions, plan the memory
 * once, and convert only at the edges. The reference runs the list op by op
 * with the fn_* ops of engine.h, which is also what fn_graph_run falls back
 * to when the backend has no graph_run or it fails.
 *
 * Values are numbered: 0 is the input, op i produces value i + 1, and the
 * last value is the output - unless outputs are named with fn_graph_output,
 * in the order the caller wants them (a detector's several heads). Shapes are per batch item (the batch size comes
 * with the input at run time) and are checked as the graph is built: a
 * failed call returns -1 and marks the graph bad, so a network checks
 * fn_graph_ok() once at the end. Weights and conv descriptors are borrowed
 * and must outlive the graph.
 *
 *   fn_graph *g = fn_graph_new(150, 150, 3);
 *   int v = fn_graph_conv(g, 0, &stem);
 *   v = fn_graph_pool(g, v, FN_OP_MAXPOOL, 3, 2, FN_PAD_VALID);
 *   int m = fn_graph_conv(g, fn_graph_conv(g, v, &c1), &c2);
 *   v = fn_graph_add(g, m, v, FN_ACT_RELU, 0);   // a residual block
 *   v = fn_graph_dense(g, fn_graph_global_mean(g, v), fc, NULL, 128);
 *   if (!fn_graph_ok(g)) ...
 *   fn_graph_run(ex, g, &x, &y);                 // y: [n, 1, 1, 128]
 *
 * Several outputs: name them, then pass an array of that many tensors.
 *
 *   fn_graph_output(g, box_head);
 *   fn_graph_output(g, class_head);
 *   fn_tensor ys[2] = {...};
 *   fn_graph_run(ex, g, &x, ys);
 *
 * int8. A network may name values (fn_graph_name): those are the ones that
 * calibration measures and that an int8 version of the graph stores as
 * 8-bit integers. fn_graph_quantize turns a graph into that version, given
 * each named value's range (the largest magnitude to represent, from
 * calibration on real inputs):
 *   - a quantized value holds q with real value q * scale: u8 (scale =
 *     range / 255) when it cannot be negative (a ReLU's output, a pool of
 *     such a value), s8 (range / 127) otherwise; a pool's output always has
 *     its input's type and scale, since pooling cannot rescale;
 *   - a convolution whose input is quantized multiplies s8 weights with one
 *     scale per output channel (max |w| / 127, after the epilogue's scale is
 *     folded in), accumulates exactly and rounds only where its output (or
 *     the add fused after it) is stored: so a residual add sees the
 *     convolution's unrounded sum;
 *   - bias correction (Nagel et al. 2019, "Data-free quantization through
 *     weight equalization and bias correction"): when calibration measured
 *     the per-channel mean E[x] of a convolution's input, the error the
 *     rounded weights make on average, (W - Wq) E[x], is added to the
 *     bias. Rounding a channel's weights moves its output by the same
 *     amount at every pixel, so the error is systematic, and through a deep
 *     network it grows: on the SSD detector the correction takes the
 *     outputs' error from the weights down by about ten times;
 *   - everything else (adds of f32 values, the global mean, the dense
 *     layer) is f32 on dequantized inputs.
 * The op-by-op run is the reference of that arithmetic: it convolves the
 * dequantized weights in float and rounds every quantized value to its
 * grid (round to nearest even, saturating), which is what an int8 backend
 * computes with integers, up to the rounding of float sums (tests compare
 * the two, test_backend.c).
 */
#ifndef FN_GRAPH_H
#define FN_GRAPH_H

#include <stdint.h>

#include "engine/engine.h"

typedef enum fn_op_kind {
    FN_OP_CONV,        /* fn_conv2d with its epilogue */
    FN_OP_MAXPOOL,     /* fn_maxpool */
    FN_OP_AVGPOOL,     /* fn_avgpool */
    FN_OP_ADD,         /* act(fn_add_zero_extended(a, b)) */
    FN_OP_GLOBAL_MEAN, /* fn_global_mean */
    FN_OP_DENSE        /* fn_dense */
} fn_op_kind;

typedef struct fn_graph_op {
    fn_op_kind kind;
    int in[2];                /* value ids; in[1] is -1 except for ADD */
    int h, w, c;              /* the output's shape per batch item */
    const fn_conv_desc *conv; /* CONV */
    int k, stride;            /* pools */
    fn_padding pad;
    fn_act act; /* ADD: applied to the sum */
    float alpha;
    const float *weights, *bias; /* DENSE: [in][out] and [out] or NULL */
} fn_graph_op;

/* A quantized value (scale 0: float32). */
typedef struct fn_graph_qvalue {
    float scale;   /* real value = stored integer * scale */
    int is_signed; /* s8; else u8 */
} fn_graph_qvalue;

/* An int8 convolution: its weights quantized, and the same layer with
 * those weights dequantized for the op-by-op run. */
typedef struct fn_graph_qconv {
    int8_t *w;         /* the conv's layout, [kh][kw][cin][cout] (depthwise: [kh][kw][c]) */
    float *w_scale;    /* [cout]: real weight = w * w_scale */
    float *bias;       /* [cout]: bias * scale + shift, float */
    float *deq;        /* w * w_scale, the same layout */
    fn_conv_desc desc; /* the op's conv on deq and bias, no scale or shift */
} fn_graph_qconv;

struct fn_graph {
    int h, w, c; /* the input's shape per batch item */
    int n_ops, cap;
    fn_graph_op *ops;
    int bad; /* a build call failed */
    int *outputs; /* named outputs (value ids); none named: the last value */
    int n_outputs, cap_outputs;
    char **names;      /* per value (cap + 1 entries), or NULL: fn_graph_name */
    int cap_names;
    fn_graph_qvalue *q; /* per value, NULL: a float32 graph (fn_graph_quantize) */
    fn_graph_qconv **qconv; /* per op: an int8 convolution, or NULL */
};

/* NULL if out of memory. */
fn_graph *fn_graph_new(int h, int w, int c);
void fn_graph_free(fn_graph *g);

int fn_graph_conv(fn_graph *g, int x, const fn_conv_desc *d);
/* kind: FN_OP_MAXPOOL or FN_OP_AVGPOOL. */
int fn_graph_pool(fn_graph *g, int x, fn_op_kind kind, int k, int stride, fn_padding pad);
/* Each input zero-extended to the larger of the two in H, W and C. */
int fn_graph_add(fn_graph *g, int a, int b, fn_act act, float alpha);
int fn_graph_global_mean(fn_graph *g, int x);
int fn_graph_dense(fn_graph *g, int x, const float *w, const float *bias, int out);
int fn_graph_ok(const fn_graph *g);
/* Name value v (not the input, not named before) as the graph's next
 * output. Returns v, or -1. */
int fn_graph_output(fn_graph *g, int v);
/* How many outputs the graph has (1 when none is named), and the value of
 * output k. */
int fn_graph_n_outputs(const fn_graph *g);
int fn_graph_output_value(const fn_graph *g, int k);

/* Name value v (for calibration and int8; the name is copied). 0, or -1
 * if v is not a value or out of memory. */
int fn_graph_name(fn_graph *g, int v, const char *name);
/* Value v's name, or NULL. */
const char *fn_graph_value_name(const fn_graph *g, int v);
/* Make g its int8 version (see the top): range[v] (for every value, 0 to
 * n_ops) is the magnitude named value v must represent; unnamed values and
 * ranges <= 0 stay float32, except pools, which follow their input. mean
 * (NULL, or one entry per value, each NULL or the value's channel count
 * of floats): the values' per-channel means over calibration, for the bias
 * correction of the convolutions that read them. 0, or -1 if out of
 * memory, already quantized, or a range or mean is not finite. */
int fn_graph_quantize(fn_graph *g, const float *range, const float *const *mean);
/* Round x (count floats) to the grid of q in place: x = clamp(rint(x /
 * scale)) * scale. The reference of storing a quantized value. */
void fn_graph_fake_quant(float *x, size_t count, const fn_graph_qvalue *q);

/* The shape of value v per batch item. */
void fn_graph_shape(const fn_graph *g, int v, int *h, int *w, int *c);

/* Run g on x [n, h, w, c] (the graph's input shape) into y: an array of
 * fn_graph_n_outputs(g) tensors (one, for a graph with no named outputs),
 * each of its output's shape [n, h', w', c']. Scratch memory comes from
 * ex->arena (not reset). 0, or -1 if out of memory or the shapes do not
 * fit. A backend's graph_run slot takes y the same way. */
int fn_graph_run(const fn_exec *ex, const fn_graph *g, const fn_tensor *x, fn_tensor *y);
/* The same, op by op with the fn_* ops (whatever backend ex has for them).
 * fn_graph_run takes this way when ex->observe is set: observe sees every
 * value (the input too) as it is made, for calibration. */
int fn_graph_run_ops(const fn_exec *ex, const fn_graph *g, const fn_tensor *x, fn_tensor *y);

#endif

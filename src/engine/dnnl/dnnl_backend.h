/*
 * dnnl_backend.h - what the oneDNN backend's files share: the per-exec
 * state with its caches, and the helpers that build oneDNN primitives from
 * the engine's descriptors. See backend.c for the design.
 */
#ifndef FN_DNNL_BACKEND_H
#define FN_DNNL_BACKEND_H

#include <stddef.h>

#include <oneapi/dnnl/dnnl.h>

#include "engine/engine.h"
#include "engine/graph.h"

/* Weights reordered into the layout a primitive asked for, with the conv's
 * epilogue folded in (bias' = bias * scale + shift, w' = w * scale). One per
 * (layer, layout); shared by every primitive of every batch size that wants
 * that layout. */
typedef struct fn_dnnl_weights {
    /* Which layer: a copy of the conv's descriptor (compared by value, so
     * that a descriptor reused at the same address for another layer is not
     * mistaken for this one), or the dense layer's weights and bias. The
     * weights themselves are assumed not to change (model files are
     * immutable). */
    fn_conv_desc conv;
    const float *dense_w, *dense_b;
    const fn_graph_qconv *q; /* an int8 convolution's (conv: q's desc), */
    float in_scale;          /* for an input of this scale */
    dnnl_memory_desc_t md;
    dnnl_memory_t w, b; /* b: NULL when the layer has no bias */
    struct fn_dnnl_weights *next;
} fn_dnnl_weights;

typedef struct fn_dnnl_op fn_dnnl_op;     /* a cached per-op primitive (backend.c) */
typedef struct fn_dnnl_plan fn_dnnl_plan; /* a compiled graph (graph.c) */

typedef struct fn_dnnl_state {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    /* Graph layout policy, fixed when the state is made (graph.c): the
     * channel block of activations (16 with AVX-512, 8 with AVX2, 0: let
     * oneDNN choose), and whether 3x3 convolutions may use Winograd. */
    int block;
    int winograd;
    fn_dnnl_weights *weights;
    fn_dnnl_op *ops; /* most recently used first */
    int n_ops;
    fn_dnnl_plan *plans; /* most recently used first */
    int n_plans;
    void *scratch; /* the per-op primitives' scratchpad */
    size_t scratch_size;
    struct fn_dnnl_train *train; /* the training slots' caches (train.c) */
} fn_dnnl_state;

/* The OpenMP thread count for the calling thread, set for the duration of
 * a call: oneDNN sizes its kernels' work split when a primitive is created
 * and runs on the OpenMP team of the thread that executes it. */
typedef struct fn_dnnl_threads {
    int saved;
} fn_dnnl_threads;
int fn_dnnl_threads_enter(const fn_exec *ex, fn_dnnl_threads *t); /* returns the count */
void fn_dnnl_threads_leave(const fn_dnnl_threads *t);

/* Is the machine so busy that a team of threads would wait on each other?
 * Every primitive is a fork-join of the OpenMP team, so a team of two needs
 * both threads on a core at once, dozens of times per network pass; when
 * other work keeps the cores busy, each join waits for a descheduled
 * thread (the SSD took 855 ms at two threads against 113 ms at one, with 14
 * runnable processes on two cores: docs/performance.md). So graphs and
 * training convolutions run on one thread, and parallel loops on the
 * exec's pool, while the one-minute load average exceeds the CPU count by
 * more than half a CPU, as OpenMP's own dynamic mode would judge it.
 * FACENET_THREADS_ADAPT=0 keeps the context's count whatever the load. */
int fn_dnnl_machine_busy(void);

/* TF padding as oneDNN's explicit left and right padding. */
void fn_dnnl_padding(int in, int k, int stride, fn_padding pad, int *out, dnnl_dim_t *left,
                     dnnl_dim_t *right);

/* A plain memory descriptor: NHWC activations as oneDNN's {n, c, h, w}, or
 * (ndims 2) a row-major {n, c} matrix. */
int fn_dnnl_md_nhwc(dnnl_memory_desc_t *md, int n, int h, int w, int c);
int fn_dnnl_md_rows(dnnl_memory_desc_t *md, int n, int c);
/* Activations {n, c, h, w} in the layout of a format tag (nChw16c...). */
int fn_dnnl_md_tag(dnnl_memory_desc_t *md, int n, int h, int w, int c, dnnl_format_tag_t tag);
/* The same with a data type (f32, u8, s8). */
int fn_dnnl_md_tag_dt(dnnl_memory_desc_t *md, int n, int h, int w, int c, dnnl_format_tag_t tag,
                      dnnl_data_type_t dt);

/* Attributes with a user-managed scratchpad and these post-ops (NULL: none). */
dnnl_primitive_attr_t fn_dnnl_attr(const_dnnl_post_ops_t po);
/* Append an activation as an eltwise post-op (nothing for FN_ACT_NONE).
 * unit: the real value of one step of the values it sees (1 for float32;
 * an int8 convolution's post-ops see dst's stored units, after the output
 * scales), so that ReLU6's bound stays at 6 in real terms. */
int fn_dnnl_append_act(dnnl_post_ops_t po, fn_act act, float alpha, float unit);

/* The int8 part of a convolution (graph.c): per output channel, the
 * factor from the s32 accumulator to dst's stored units, and the factor on
 * what dst held before for the sum post-op. */
typedef struct fn_dnnl_conv_q {
    const float *oscale; /* [cout] */
    float sum_scale;
    float dst_unit; /* the real value of one step of dst (1 for float32) */
} fn_dnnl_conv_q;

/* Convolution forward primitive descriptor for d on an n x h x w input,
 * alg dnnl_convolution_direct or _winograd. src_md / dst_md: the layouts to
 * use, or NULL to let oneDNN choose. Post-ops: d's activation, then (sum)
 * an accumulation into dst, then act2. q: NULL for float32; otherwise an
 * int8 convolution (src_md and dst_md given, with their data types; s8
 * weights, float bias in accumulator units). */
int fn_dnnl_conv_pd(fn_dnnl_state *st, const fn_conv_desc *d, int n, int h, int w, dnnl_alg_kind_t alg,
                    const dnnl_memory_desc_t *src_md, const dnnl_memory_desc_t *dst_md, int sum, fn_act act2,
                    float alpha2, const fn_dnnl_conv_q *q, dnnl_primitive_desc_t *pd);
/* Inner product forward for x of src_md (2-D {n, in} or 4-D {n, c, h, w}
 * whose NHWC order matches w's rows) to out features. */
int fn_dnnl_dense_pd(fn_dnnl_state *st, const dnnl_memory_desc_t *src_md, int out, int has_bias,
                     const dnnl_memory_desc_t *dst_md, dnnl_primitive_desc_t *pd);

/* The reordered weights pd asks for, made on first use. */
fn_dnnl_weights *fn_dnnl_conv_weights(fn_dnnl_state *st, const fn_conv_desc *d,
                                      const_dnnl_primitive_desc_t pd);
/* The same for an int8 convolution of the graph: q's s8 weights, and its
 * bias divided by in_scale * w_scale (oneDNN 2's int8 bias is added to the
 * accumulator, before the output scales). */
fn_dnnl_weights *fn_dnnl_qconv_weights(fn_dnnl_state *st, const fn_graph_qconv *q, float in_scale,
                                       const_dnnl_primitive_desc_t pd);
fn_dnnl_weights *fn_dnnl_dense_weights(fn_dnnl_state *st, const float *w, const float *bias,
                                       const_dnnl_primitive_desc_t pd);
void fn_dnnl_weights_free_all(fn_dnnl_state *st);
/* Do two conv descriptors describe the same layer? */
int fn_dnnl_same_conv(const fn_conv_desc *a, const fn_conv_desc *b);

/* Is pd oneDNN's reference implementation (plain loops, often 100x slower
 * than its JIT kernels, and slower than ours)? Some layout combinations
 * only have that one, e.g. an NHWC source with a blocked destination. */
int fn_dnnl_is_reference(const_dnnl_primitive_desc_t pd);
/* A primitive from pd; NULL on failure. */
dnnl_primitive_t fn_dnnl_primitive(const_dnnl_primitive_desc_t pd);
/* A memory object of md with no buffer yet; NULL on failure. */
dnnl_memory_t fn_dnnl_memory(fn_dnnl_state *st, const dnnl_memory_desc_t *md);
size_t fn_dnnl_scratch_size(const_dnnl_primitive_desc_t pd);

/* The compiled graphs (graph.c). */
int fn_dnnl_graph_run(const fn_exec *ex, const fn_graph *g, const fn_tensor *x, fn_tensor *y);
void fn_dnnl_plans_free(fn_dnnl_state *st);

/* The training slots (train.c), and their caches' release. */
typedef struct fn_dnnl_train fn_dnnl_train;
void fn_dnnl_train_free(fn_dnnl_state *st);
int fn_dnnl_conv2d_train(const fn_exec *ex, const fn_tensor *x, const fn_conv_desc *d, fn_tensor *y);
int fn_dnnl_conv2d_backward_data(const fn_exec *ex, const fn_tensor *dy, const fn_conv_desc *d, fn_tensor *dx);
int fn_dnnl_conv2d_backward_both(const fn_exec *ex, const fn_tensor *x, const fn_tensor *dy, const fn_conv_desc *d,
                                 fn_tensor *dx, float *dw);
int fn_dnnl_conv2d_backward_weights(const fn_exec *ex, const fn_tensor *x, const fn_tensor *dy,
                                    const fn_conv_desc *d, float *dw, float *dbias);
int fn_dnnl_maxpool_backward(const fn_exec *ex, const fn_tensor *x, const fn_tensor *dy, int k, int stride,
                             fn_padding pad, fn_tensor *dx);
int fn_dnnl_avgpool_backward(const fn_exec *ex, const fn_tensor *dy, int k, int stride, fn_padding pad,
                             fn_tensor *dx);

#endif

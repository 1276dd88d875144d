/*
 * engine.h - the tensor engine: the operations the face networks are built
 * from, and the seam where a backend plugs in.
 *
 * Every op has a plain reference implementation in src/engine/ref/ (always
 * built, the ground truth for tests). A faster backend provides its own
 * versions in an fn_backend table; a NULL slot falls back to the reference.
 * Networks call the fn_* functions below (or run a whole fn_graph, graph.h),
 * never a backend directly.
 *
 * Conventions:
 *   - tensors are NHWC float32 (tensor.h); weights use TF's layouts:
 *     conv [kh][kw][cin][cout], depthwise [kh][kw][c], dense [in][out];
 *   - padding follows TF exactly: SAME gives out = ceil(in/s) with the odd
 *     pad cell at the bottom/right; VALID gives out = floor((in-k)/s)+1;
 *   - the caller allocates outputs (from the session arena) with the shape
 *     given by the fn_*_shape helpers;
 *   - a convolution carries its epilogue: y = act((conv(x) + bias) * scale
 *     + shift), any part optional, so a backend can fuse it.
 *
 *   fn_conv_desc d = {.kh = 3, .kw = 3, .stride = 2, .padding = FN_PAD_SAME,
 *                     .cin = 32, .cout = 64, .weights = w, .bias = b,
 *                     .act = FN_ACT_RELU};
 *   int oh, ow;
 *   fn_conv_shape(&d, x.h, x.w, &oh, &ow);
 *   fn_tensor y = fn_tensor_make(x.n, oh, ow, 64, fn_arena_floats(a, ...));
 *   fn_conv2d(ex, &x, &d, &y);
 */
#ifndef FN_ENGINE_H
#define FN_ENGINE_H

#include <stddef.h>

#include "core/pool.h"
#include "engine/arena.h"
#include "engine/tensor.h"

typedef enum fn_padding { FN_PAD_VALID, FN_PAD_SAME } fn_padding;
typedef enum fn_act { FN_ACT_NONE, FN_ACT_RELU, FN_ACT_RELU6, FN_ACT_LEAKY } fn_act;

typedef struct fn_conv_desc {
    int kh, kw;
    int stride;         /* same in both directions */
    fn_padding padding;
    int cin, cout;      /* depthwise: cout == cin */
    int depthwise;      /* 1: one kh x kw filter per channel */
    const float *weights;
    const float *bias;  /* [cout] or NULL */
    const float *scale; /* [cout] or NULL: per-channel multiply after the bias */
    const float *shift; /* [cout] or NULL: per-channel add after the scale */
    fn_act act;
    float alpha;        /* leaky ReLU slope */
} fn_conv_desc;

/* A conv's epilogue folded into its weights and bias, as fast kernels and
 * int8 run it: w' = w * scale[co], b' = bias * scale + shift, so that
 * y = act(conv'(x) + b'). i indexes d->weights, whose fastest-varying
 * index is the output channel in both layouts. */
static inline float fn_conv_folded_weight(const fn_conv_desc *d, size_t i) {
    return d->weights[i] * (d->scale ? d->scale[i % (size_t)d->cout] : 1.0f);
}
static inline float fn_conv_folded_bias(const fn_conv_desc *d, int co) {
    return (d->bias ? d->bias[co] : 0.0f) * (d->scale ? d->scale[co] : 1.0f) + (d->shift ? d->shift[co] : 0.0f);
}

/* What an op runs with: the backend, the worker threads, scratch memory and
 * the backend's own state (its caches of prepared kernels; NULL for the
 * reference). Set up with fn_exec_init, released with fn_exec_release. */
typedef struct fn_backend fn_backend;
typedef struct fn_graph fn_graph;
/* Sees value v of graph g (n items) during an op-by-op run (graph.h). */
typedef void (*fn_graph_observer)(void *user, const fn_graph *g, int v, const fn_tensor *t);
typedef struct fn_exec {
    const fn_backend *backend;
    fn_pool *pool;
    fn_arena *arena;
    void *backend_state;
    /* Networks with an int8 version of their graph run it (graph.h); set
     * by the session from the context's precision. */
    int int8;
    /* Calibration: graphs run op by op and show every value (graph.h). */
    fn_graph_observer observe;
    void *observe_user;
} fn_exec;

/* A backend: every slot may be NULL, which means "use the reference". The
 * per-op slots take and give NHWC tensors and return 0, or nonzero when
 * they cannot do this call (no state, an unsupported case, out of memory):
 * the reference then runs it, so a backend never has to be complete. A
 * backend that needs state (primitive caches, reordered weights) creates it
 * once per exec; when state_create fails or was never called,
 * backend_state is NULL. */
struct fn_backend {
    const char *name;
    int (*conv2d)(const fn_exec *ex, const fn_tensor *x, const fn_conv_desc *d, fn_tensor *y);
    int (*dense)(const fn_exec *ex, const fn_tensor *x, const float *w, const float *bias, fn_tensor *y);
    /* Run a whole graph (graph.h) in the backend's own layouts. 0 on
     * success; nonzero makes the caller run the graph op by op instead
     * (which rewrites the whole output). */
    int (*graph_run)(const fn_exec *ex, const fn_graph *g, const fn_tensor *x, fn_tensor *y);
    void *(*state_create)(void);
    void (*state_free)(void *state);
    /* Training (engine/backward.h): weights change between calls, so these
     * cache nothing by weight contents. Same 0 / nonzero contract. */
    int (*conv2d_train)(const fn_exec *ex, const fn_tensor *x, const fn_conv_desc *d, fn_tensor *y);
    int (*conv2d_backward_data)(const fn_exec *ex, const fn_tensor *dy, const fn_conv_desc *d, fn_tensor *dx);
    int (*conv2d_backward_weights)(const fn_exec *ex, const fn_tensor *x, const fn_tensor *dy,
                                   const fn_conv_desc *d, float *dw, float *dbias);
    int (*maxpool_backward)(const fn_exec *ex, const fn_tensor *x, const fn_tensor *dy, int k, int stride,
                            fn_padding pad, fn_tensor *dx);
    int (*avgpool_backward)(const fn_exec *ex, const fn_tensor *dy, int k, int stride, fn_padding pad,
                            fn_tensor *dx);
    /* fn_parallel_for's tasks on the backend's own threads, when its
     * kernels run on a thread team of their own (oneDNN's OpenMP): then one
     * team, not two, shares the cores. 0 when all n_tasks tasks ran;
     * nonzero declines, and the exec's pool runs them. */
    int (*parallel)(const fn_exec *ex, int n_tasks, fn_task_fn task, void *arg);
    /* Both backward passes of a convolution in one call (dx or dw may be
     * NULL; dw is added to), so that a backend can share their work, such
     * as Winograd's blocked copy of dy. Nonzero declines: the caller then
     * runs the two slots above, so a slot adds into dw only as its last
     * step (as conv2d_backward_weights does). */
    int (*conv2d_backward_both)(const fn_exec *ex, const fn_tensor *x, const fn_tensor *dy, const fn_conv_desc *d,
                                fn_tensor *dx, float *dw);
};

extern const fn_backend fn_backend_ref;
/* The fastest backend built into this library, unless the environment
 * variable FACENET_BACKEND=ref asks for the reference. */
const fn_backend *fn_backend_default(void);
/* The fast backend built into this library whatever the environment says,
 * or NULL if there is only the reference (for tests and benchmarks). */
const fn_backend *fn_backend_fast(void);

/* Fill ex and create the backend's state. Returns 0, or -1 if the state
 * could not be created (ex is still usable: the backend then falls back to
 * the reference). */
int fn_exec_init(fn_exec *ex, const fn_backend *backend, fn_pool *pool, fn_arena *arena);
void fn_exec_release(fn_exec *ex);

/* ---- geometry: 0 on success, -1 if the input is too small for the window */
int fn_window_out(int in, int k, int stride, fn_padding pad, int *out, int *pad_before);
int fn_conv_shape(const fn_conv_desc *d, int h, int w, int *oh, int *ow);

/* ---- ops (the reference implementation is named fn_ref_<op>) */

/* Convolution or depthwise convolution with its epilogue. */
void fn_conv2d(const fn_exec *ex, const fn_tensor *x, const fn_conv_desc *d, fn_tensor *y);
void fn_ref_conv2d(const fn_exec *ex, const fn_tensor *x, const fn_conv_desc *d, fn_tensor *y);

/* Elementwise, in place. */
void fn_bias_add(fn_tensor *x, const float *bias);                             /* x += b[c] */
void fn_scale_shift(fn_tensor *x, const float *scale, const float *shift);     /* x = x*s[c]+t[c] */
void fn_activate(fn_tensor *x, fn_act act, float alpha);                       /* relu/relu6/leaky */
/* y = a + b where each input is zero-extended to y's shape (H, W and C may
 * each be larger in y than in a or b): dlib's add_prev, the ResNet's
 * down-sampling shortcut with extra zero channels. y may alias a or b only if
 * it has that input's shape. */
void fn_add_zero_extended(const fn_tensor *a, const fn_tensor *b, fn_tensor *y);

/* Pooling: k x k window, TF padding; padded cells are ignored (max ignores
 * them, average divides by the number of real cells). */
void fn_maxpool(const fn_exec *ex, const fn_tensor *x, int k, int stride, fn_padding pad, fn_tensor *y);
void fn_avgpool(const fn_exec *ex, const fn_tensor *x, int k, int stride, fn_padding pad, fn_tensor *y);
/* Mean over H and W: y is [n,1,1,c]. */
void fn_global_mean(const fn_tensor *x, fn_tensor *y);

/* Fully connected: x [n,1,1,in] (or any [n,h,w,c] read as n rows of h*w*c),
 * w [in][out], bias [out] or NULL; y [n,1,1,out]. */
void fn_dense(const fn_exec *ex, const fn_tensor *x, const float *w, const float *bias, fn_tensor *y);
void fn_ref_dense(const fn_exec *ex, const fn_tensor *x, const float *w, const float *bias, fn_tensor *y);

/* Each row of rows x dim values scaled to unit L2 norm (rows of norm below
 * eps are divided by eps instead). */
void fn_l2_normalize(float *x, int rows, int dim, float eps);

/* TF resizeBilinear with align_corners = false, half_pixel_centers = false
 * (the "legacy" mode face-api uses): src = dst * in/out, no antialiasing. */
void fn_resize_bilinear_legacy(const fn_tensor *x, fn_tensor *y);

/* Zero padding of H and W: y has h + top + bottom rows, w + left + right columns. */
void fn_pad_spatial(const fn_tensor *x, int top, int bottom, int left, int right, fn_tensor *y);

/* Split [0, n) into chunks over the exec's pool: fn(arg, begin, end). */
typedef void (*fn_range_fn)(void *arg, int begin, int end);
void fn_parallel_for(const fn_exec *ex, int n, int grain, fn_range_fn fn, void *arg);

#endif /* FN_ENGINE_H */

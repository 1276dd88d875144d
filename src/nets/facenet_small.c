/*
 * facenet_small.c - the small residual embedding network (facenet_small.h),
 * bound from a model file and laid out as one fn_graph, like ResNet-29.
 */
#include <stdio.h>
#include <stdlib.h>

#include "engine/graph.h"
#include "model/model.h"
#include "nets/facenet_small.h"
#include "nets/nets.h"

const fn_resnet_block fn_small_blocks[FN_SMALL_BLOCKS] = {
    {"res32_1", 32, 32, 0},  {"res64_down", 32, 64, 1},   {"res64_1", 64, 64, 0},
    {"res128_down", 64, 128, 1}, {"res128_1", 128, 128, 0}, {"res256_down", 128, 256, 1},
    {"res256_1", 256, 256, 0},
};

typedef struct small_block {
    fn_conv_desc c1, c2;
} small_block;

struct fn_small {
    int size;
    fn_conv_desc stem;
    small_block blocks[FN_SMALL_BLOCKS];
    const float *fc;
    fn_graph *graph;
};

static fn_graph *build_graph(const fn_small *net) {
    fn_graph *g = fn_graph_new(net->size, net->size, 3);
    if (!g) return NULL;
    int v = fn_graph_conv(g, 0, &net->stem);
    for (int i = 0; i < FN_SMALL_BLOCKS; i++) {
        const small_block *b = &net->blocks[i];
        int shortcut = fn_small_blocks[i].down ? fn_graph_pool(g, v, FN_OP_AVGPOOL, 2, 2, FN_PAD_VALID) : v;
        int m = fn_graph_conv(g, fn_graph_conv(g, v, &b->c1), &b->c2);
        v = fn_graph_add(g, m, shortcut, FN_ACT_RELU, 0.0f);
    }
    v = fn_graph_global_mean(g, v);
    fn_graph_dense(g, v, net->fc, NULL, FN_SMALL_DIM);
    if (!fn_graph_ok(g)) {
        fn_graph_free(g);
        return NULL;
    }
    return g;
}

static facenet_status small_bind(facenet_model *m, void **out, fn_error *e) {
    if (m->embedding_dim != FN_SMALL_DIM || m->input_size < 16 || m->input_size > 512)
        return fn_fail(e, FACENET_ERR_MODEL, "%s: %s gives %d floats from 16 to 512 px, not %d from %d", m->path,
                       FN_SMALL_ARCH, FN_SMALL_DIM, m->embedding_dim, m->input_size);
    fn_small *net = calloc(1, sizeof *net);
    if (!net) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory");
    net->size = m->input_size;
    facenet_status st = fn_resnet_bind_conv(m, FN_SMALL_STEM, 3, 3, FN_SMALL_STEM_C, 2, FN_PAD_SAME, FN_ACT_RELU,
                                            &net->stem, e);
    for (int i = 0; st == FACENET_OK && i < FN_SMALL_BLOCKS; i++) {
        const fn_resnet_block *b = &fn_small_blocks[i];
        char prefix[96];
        snprintf(prefix, sizeof prefix, "%s/conv1", b->name);
        st = fn_resnet_bind_conv(m, prefix, 3, b->cin, b->cout, b->down ? 2 : 1, FN_PAD_SAME, FN_ACT_RELU,
                                 &net->blocks[i].c1, e);
        if (st != FACENET_OK) break;
        snprintf(prefix, sizeof prefix, "%s/conv2", b->name);
        st = fn_resnet_bind_conv(m, prefix, 3, b->cout, b->cout, 1, FN_PAD_SAME, FN_ACT_NONE, &net->blocks[i].c2,
                                 e);
    }
    const int64_t fshape[2] = {FN_SMALL_FC_IN, FN_SMALL_DIM};
    if (st == FACENET_OK && !(net->fc = fn_model_weights(m, "fc", 2, fshape, e))) st = e->status;
    if (st == FACENET_OK && !(net->graph = build_graph(net)))
        st = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory laying out the embedding network");
    if (st != FACENET_OK) {
        free(net);
        return st;
    }
    *out = net;
    return FACENET_OK;
}

static void small_free(void *vp) {
    fn_small *net = vp;
    if (net) fn_graph_free(net->graph);
    free(net);
}

const fn_net_ops fn_small_ops = {FN_SMALL_ARCH, small_bind, small_free};

facenet_status fn_small_forward(const fn_small *net, const fn_exec *ex, const fn_tensor *x, float *out,
                                fn_error *e) {
    if (x->h != net->size || x->w != net->size || x->c != 3)
        return fn_fail(e, FACENET_ERR_INTERNAL, "%s: input must be %dx%dx3", FN_SMALL_ARCH, net->size, net->size);
    fn_tensor y = fn_tensor_make(x->n, 1, 1, FN_SMALL_DIM, out);
    if (fn_graph_run(ex, net->graph, x, &y) != 0)
        return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory running the embedding network");
    return FACENET_OK;
}

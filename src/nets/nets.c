/* nets.c - the networks this library can run, by architecture name. */
#include <stdlib.h>
#include <string.h>

#include "engine/graph.h"
#include "nets/facenet_small.h"
#include "nets/nets.h"
#include "nets/resnet29.h"
#include "nets/ssd_mobilenetv1.h"

extern const fn_net_ops fn_resnet29_ops, fn_small_ops;
extern const fn_net_ops fn_landmark68_ops, fn_landmark68_tiny_ops;
extern const fn_net_ops fn_ssd_mobilenetv1_ops, fn_tiny_face_detector_ops;

static const fn_net_ops *const NETS[] = {&fn_resnet29_ops,        &fn_small_ops,
                                         &fn_landmark68_ops,      &fn_landmark68_tiny_ops,
                                         &fn_ssd_mobilenetv1_ops, &fn_tiny_face_detector_ops};

const fn_net_ops *fn_net_ops_find(const char *arch) {
    for (size_t i = 0; i < sizeof NETS / sizeof NETS[0]; i++)
        if (strcmp(NETS[i]->arch, arch) == 0) return NETS[i];
    return NULL;
}

facenet_status fn_embedding_forward(const facenet_model *m, const fn_exec *ex, const fn_tensor *x, float *out,
                                    fn_error *e) {
    if (m->ops == &fn_small_ops) return fn_small_forward(m->net, ex, x, out, e);
    if (m->ops == &fn_resnet29_ops) return fn_resnet29_forward(m->net, ex, x, out, e);
    return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "%s is not an embedding network", m->path);
}

int fn_model_has_int8(const facenet_model *m) {
    if (m->ops == &fn_resnet29_ops) return fn_resnet29_graph8(m->net) != NULL;
    if (m->ops == &fn_ssd_mobilenetv1_ops) return fn_ssd_mobilenetv1_graph8(m->net) != NULL;
    return 0;
}

facenet_status fn_net_int8_graph(const facenet_model *m, const fn_graph *g, fn_graph *(*build)(const void *net),
                                 const void *net, fn_graph **out, fn_error *e) {
    *out = NULL;
    const int nv = g->n_ops + 1;
    float *range = calloc((size_t)nv, sizeof *range);
    float **mean = calloc((size_t)nv, sizeof *mean);
    facenet_status st = FACENET_OK;
    if (!range || !mean) {
        st = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory");
        goto done;
    }
    int found = 0;
    for (int v = 0; v < nv; v++) {
        const char *name = fn_graph_value_name(g, v);
        if (!name) continue;
        int h, w, c;
        fn_graph_shape(g, v, &h, &w, &c);
        int r = fn_calib_range(m->file, m->path, name, &range[v], e);
        if (r >= 0 && fn_calib_mean(m->file, m->path, name, c, &mean[v], e) < 0) r = -1;
        if (r < 0) {
            st = e->status;
            goto done;
        }
        found += r;
    }
    if (found && (!(*out = build(net)) || fn_graph_quantize(*out, range, (const float *const *)mean) != 0)) {
        fn_graph_free(*out);
        *out = NULL;
        st = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory laying out the int8 form of %s", m->path);
    }
done:
    for (int v = 0; mean && v < nv; v++) free(mean[v]);
    free(mean);
    free(range);
    return st;
}

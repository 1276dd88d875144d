/* nets.c - the networks this library can run, by architecture name. */
#include <string.h>

#include "nets/facenet_small.h"
#include "nets/nets.h"
#include "nets/resnet29.h"

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

int fn_embedding_has_int8(const facenet_model *m) {
    return m->ops == &fn_resnet29_ops && fn_resnet29_graph8(m->net) != NULL;
}

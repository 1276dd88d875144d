/* nets.c - the networks this library can run, by architecture name. */
#include <string.h>

#include "nets/nets.h"

extern const fn_net_ops fn_resnet29_ops;
extern const fn_net_ops fn_landmark68_ops, fn_landmark68_tiny_ops;
extern const fn_net_ops fn_ssd_mobilenetv1_ops, fn_tiny_face_detector_ops;

static const fn_net_ops *const NETS[] = {&fn_resnet29_ops, &fn_landmark68_ops, &fn_landmark68_tiny_ops,
                                         &fn_ssd_mobilenetv1_ops, &fn_tiny_face_detector_ops};

const fn_net_ops *fn_net_ops_find(const char *arch) {
    for (size_t i = 0; i < sizeof NETS / sizeof NETS[0]; i++)
        if (strcmp(NETS[i]->arch, arch) == 0) return NETS[i];
    return NULL;
}

/*
 * nets.h - how the model loader reaches each network: bind a model's
 * weights into the network's own struct, and free it.
 */
#ifndef FN_NETS_H
#define FN_NETS_H

#include "core/core.h"
#include "engine/engine.h"
#include "model/model.h"

typedef struct fn_net_ops {
    const char *arch; /* name in the arch table (arch.h) */
    facenet_status (*bind)(facenet_model *m, void **net, fn_error *e);
    void (*free)(void *net);
} fn_net_ops;

/* The ops for an architecture, or NULL if the library cannot run it. */
const fn_net_ops *fn_net_ops_find(const char *arch);

/* An embedding network's forward pass, whichever it is: x [n, s, s, 3]
 * normalised input (s = m->input_size), out n x m->embedding_dim raw. */
facenet_status fn_embedding_forward(const facenet_model *m, const fn_exec *ex, const fn_tensor *x, float *out,
                                    fn_error *e);
/* Does the model's network have an int8 form (its file carries
 * calibration, written by `facenet quantize`), which runs when ex->int8? */
int fn_model_has_int8(const facenet_model *m);

/* A network's int8 graph: read the calibration range of each named value of
 * g from m's file, and its channel means where the file has them (for the
 * bias correction, engine/graph.h); if there is any range, lay out a fresh
 * copy of the graph with build(net) and quantize it (values without a
 * range stay float32). *out is NULL when the file carries no calibration. */
struct fn_graph;
facenet_status fn_net_int8_graph(const facenet_model *m, const struct fn_graph *g,
                                 struct fn_graph *(*build)(const void *net), const void *net, struct fn_graph **out,
                                 fn_error *e);

#endif

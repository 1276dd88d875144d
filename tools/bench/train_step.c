/*
 * train_step.c - times facenet's training step (fn_train_bench) and prints
 * one JSON line, for comparison with tools/bench/torch_train_step.py in the
 * same run. Built against the static library of a build tree:
 *
 *   cc -O2 -std=c11 -Iinclude -Isrc tools/bench/train_step.c build/libfacenet.a \
 *      -fopenmp -ldnnl -ljpeg -lpng -lm -lpthread -o train_step
 *   ./train_step [arch=resnet29] [batch=48] [threads=2] [seconds=20]
 */
#include <stdio.h>
#include <stdlib.h>

#include "engine/engine.h"
#include "train/train.h"

int main(int argc, char **argv) {
    const char *arch = argc > 1 ? argv[1] : "resnet29";
    int batch = argc > 2 ? atoi(argv[2]) : 48, threads = argc > 3 ? atoi(argv[3]) : 2;
    double seconds = argc > 4 ? atof(argv[4]) : 20.0;
    fn_train_bench_result r;
    fn_error e = {0};
    if (fn_train_bench(arch, batch, threads, seconds, &r, &e)) {
        fprintf(stderr, "train_step: %s\n", e.msg);
        return 1;
    }
    printf("{\"engine\": \"facenet\", \"backend\": \"%s\", \"arch\": \"%s\", \"batch\": %d, \"threads\": %d, "
           "\"steps\": %d, \"ms_per_step\": %.1f, \"ms_min\": %.1f, \"ms_forward\": %.1f, \"ms_backward\": %.1f, "
           "\"ms_update\": %.1f}\n",
           fn_backend_default()->name, arch, batch, threads, r.steps, r.ms_median, r.ms_min, r.ms_forward,
           r.ms_backward, r.ms_update);
    return 0;
}

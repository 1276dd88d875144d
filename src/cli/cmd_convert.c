/* cmd_convert.c - `facenet convert`: TF.js weights manifest to a safetensors model file. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char USAGE[] =
    "usage: facenet convert [--arch NAME] [--model-id ID] [--threshold T] MANIFEST.json OUT.safetensors\n"
    "\n"
    "Convert a TF.js weights manifest (such as face-api's *-weights_manifest.json with\n"
    "its .bin shards beside it) into a facenet model file in the safetensors format.\n"
    "Quantized weights (uint8, uint16, float16) are dequantized to float32 exactly as\n"
    "TF.js does. The metadata records the architecture, input size, preprocessing and\n"
    "embedding size (see docs/model-format.md).\n"
    "\n"
    "  --arch NAME     the architecture (default: recognised from the tensor names):\n"
    "                  dlib_resnet29, ssd_mobilenetv1, face_landmark_68,\n"
    "                  face_landmark_68_tiny, tiny_face_detector\n"
    "  --model-id ID   an identifier to record (default: from the manifest's name)\n"
    "  --threshold T   embedding models: the distance below which two faces are the same\n"
    "                  person, recorded in the metadata for compare and identification\n"
    "                  (`facenet eval lfw --write-threshold` derives it from LFW)\n";

static int run(int argc, char **argv) {
    facenet_convert_params p = facenet_convert_default_params();
    const char *pos[2];
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--arch") == 0 || strcmp(argv[i], "--model-id") == 0 ||
            strcmp(argv[i], "--threshold") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "facenet convert: %s needs a value\n", argv[i]);
                return CLI_USAGE;
            }
            if (strcmp(argv[i], "--arch") == 0) {
                p.architecture = argv[++i];
            } else if (strcmp(argv[i], "--model-id") == 0) {
                p.model_id = argv[++i];
            } else {
                char *end;
                const char *v = argv[++i];
                p.threshold = strtof(v, &end);
                if (!*v || *end || !(p.threshold > 0.0f && p.threshold < 4.0f)) {
                    fprintf(stderr, "facenet convert: --threshold needs a distance from 0 to 4, not '%s'\n", v);
                    return CLI_USAGE;
                }
            }
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "facenet convert: unknown option %s\n%s", argv[i], USAGE);
            return CLI_USAGE;
        } else if (npos < 2) {
            pos[npos++] = argv[i];
        } else {
            fprintf(stderr, "facenet convert: too many arguments\n%s", USAGE);
            return CLI_USAGE;
        }
    }
    if (npos != 2) {
        fprintf(stderr, "facenet convert: need MANIFEST.json and OUT.safetensors\n%s", USAGE);
        return CLI_USAGE;
    }
    facenet_ctx *ctx = cli_ctx(1);
    if (!ctx) return CLI_FAIL;
    facenet_status st = facenet_convert_tfjs(ctx, pos[0], pos[1], &p);
    if (st != FACENET_OK) cli_error("convert", ctx, st);
    facenet_ctx_free(ctx);
    return st == FACENET_OK ? CLI_OK : CLI_FAIL;
}

const cli_command cli_cmd_convert = {"convert", "convert TF.js weights to a facenet model file", USAGE, 0, NULL, run};

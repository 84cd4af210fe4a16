/* What an app does at start-up, through the tierforge C ABI: open the bundle, launch it (probe
   the device once, pick the best variant that fits, cache the choice in the app-data folder,
   load it, stepping down past damaged files), then classify images.

     app_startup BUNDLE_DIR APP_DATA_DIR [IMAGE.pgm|IMAGE.ppm ...]

   prints `variant: <id>`, `cache: cold` or `cache: warm`, `step-down: ...` when a variant file
   was damaged, then `<image>: <top-1 label> <probability>` per image. TIERFORGE_REPORT=1 also
   prints the launch report as JSON. Exit 0 on success, 1 on an error (message on stderr),
   2 on bad usage.

   Build (after `cargo build --release -p runtime`):
     cc -O2 -Iruntime/include examples/c/app_startup.c target/release/libruntime.a \
        -lpthread -ldl -lm -o app_startup
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tierforge.h"

static void die(uint64_t handle, const char *what, tf_status st) {
    char msg[2048];
    tf_last_error(handle, msg, sizeof msg);
    fprintf(stderr, "error: %s: %s: %s\n", what, tf_status_name(st), msg);
    exit(1);
}

/* Reads one whitespace-separated header number of a PNM file, skipping comments. */
static int pnm_number(FILE *f, unsigned long *out) {
    int c;
    do {
        c = fgetc(f);
        if (c == '#') {
            while (c != '\n' && c != EOF) c = fgetc(f);
        }
    } while (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '#');
    if (c < '0' || c > '9') return -1;
    unsigned long v = 0;
    while (c >= '0' && c <= '9') {
        v = v * 10 + (unsigned long)(c - '0');
        if (v > 100000) return -1;
        c = fgetc(f);
    }
    *out = v;
    return 0; /* the single whitespace after the number is consumed */
}

/* Binary PGM (P5, 1 channel) or PPM (P6, 3 channels), maxval 255: HWC u8 pixels. */
static unsigned char *read_pnm(const char *path, uint32_t *w, uint32_t *h, uint32_t *c) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "error: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char magic[2];
    unsigned long width, height, maxval;
    if (fread(magic, 1, 2, f) != 2 || magic[0] != 'P' || (magic[1] != '5' && magic[1] != '6') ||
        pnm_number(f, &width) || pnm_number(f, &height) || pnm_number(f, &maxval) ||
        maxval != 255 || width == 0 || height == 0) {
        fprintf(stderr, "error: %s: not a binary PGM/PPM (P5/P6, maxval 255) image\n", path);
        fclose(f);
        return NULL;
    }
    *c = magic[1] == '5' ? 1 : 3;
    *w = (uint32_t)width;
    *h = (uint32_t)height;
    size_t n = (size_t)width * height * *c;
    unsigned char *px = malloc(n);
    if (!px || fread(px, 1, n, f) != n) {
        fprintf(stderr, "error: %s: truncated image (%lux%lu)\n", path, width, height);
        free(px);
        fclose(f);
        return NULL;
    }
    fclose(f);
    return px;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s BUNDLE_DIR APP_DATA_DIR [IMAGE.pgm|IMAGE.ppm ...]\n", argv[0]);
        return 2;
    }
    uint64_t bundle = 0, launch = 0;
    tf_status st = tf_bundle_open(argv[1], &bundle);
    if (st != TF_STATUS_OK) die(0, "opening the bundle", st);

    tf_launch_options opts = tf_launch_options_default();
    st = tf_launch(bundle, argv[2], &opts, &launch);
    if (st != TF_STATUS_OK) die(bundle, "launching", st);
    tf_close(bundle); /* the launch keeps what it needs */

    tf_decision d;
    st = tf_launch_decision(launch, &d);
    if (st != TF_STATUS_OK) die(launch, "reading the decision", st);
    char id[256];
    st = tf_launch_variant_id(launch, id, sizeof id, NULL);
    if (st != TF_STATUS_OK) die(launch, "reading the variant id", st);
    printf("variant: %s\n", id);
    printf("cache: %s\n", d.cache_warm ? "warm" : "cold");
    printf("predicted: %.3f ms on %u thread(s)\n", d.predicted_latency_ms, d.threads);
    if (d.fallbacks > 0) {
        printf("step-down: %u damaged variant file(s) skipped, loaded %s\n", d.fallbacks, id);
    }
    if (getenv("TIERFORGE_REPORT")) {
        size_t need = 0;
        tf_launch_report_json(launch, NULL, 0, &need);
        char *json = malloc(need);
        if (json && tf_launch_report_json(launch, json, need, NULL) == TF_STATUS_OK) {
            printf("report: %s\n", json);
        }
        free(json);
    }

    float *probs = calloc(d.num_classes, sizeof *probs);
    if (!probs) return 1;
    int failed = 0;
    for (int i = 3; i < argc; i++) {
        uint32_t w, h, c, top1;
        unsigned char *px = read_pnm(argv[i], &w, &h, &c);
        if (!px) {
            failed = 1;
            continue;
        }
        st = tf_predict_u8(launch, px, (size_t)w * h * c, w, h, c, probs, d.num_classes, &top1);
        free(px);
        if (st != TF_STATUS_OK) {
            char msg[1024];
            tf_last_error(launch, msg, sizeof msg);
            fprintf(stderr, "error: %s: %s: %s\n", argv[i], tf_status_name(st), msg);
            failed = 1;
            continue;
        }
        char label[256];
        tf_label(launch, top1, label, sizeof label, NULL);
        printf("%s: %s %.6f\n", argv[i], label, probs[top1]);
    }
    free(probs);
    tf_close(launch);
    return failed;
}

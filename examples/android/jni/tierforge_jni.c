/* JNI glue over the tierforge C ABI (runtime/include/tierforge.h) for com.tierforge.Tierforge.
   Every native returns a handle or a value, or throws com.tierforge.TierforgeException with the
   runtime's status name and message; no native crashes the VM on bad input.

   Android: build with the NDK next to libruntime.a for aarch64-linux-android (see README).
   Desktop JDK (what the test suite does):
     cc -shared -fPIC -O2 -I$JAVA_HOME/include -I$JAVA_HOME/include/linux -Iruntime/include \
        examples/android/jni/tierforge_jni.c target/release/libruntime.a -lpthread -ldl -lm \
        -o libtierforge_jni.so
*/
#include <jni.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tierforge.h"

static void throw_status(JNIEnv *env, uint64_t handle, tf_status st) {
    char msg[2048];
    tf_last_error(handle, msg, sizeof msg);
    char full[2200];
    snprintf(full, sizeof full, "%s: %s", tf_status_name(st), msg);
    jclass cls = (*env)->FindClass(env, "com/tierforge/TierforgeException");
    if (cls) (*env)->ThrowNew(env, cls, full);
}

static void throw_plain(JNIEnv *env, const char *msg) {
    jclass cls = (*env)->FindClass(env, "com/tierforge/TierforgeException");
    if (cls) (*env)->ThrowNew(env, cls, msg);
}

JNIEXPORT jlong JNICALL Java_com_tierforge_Tierforge_nativeOpen(JNIEnv *env, jclass cls,
                                                               jstring dir) {
    (void)cls;
    if (!dir) { throw_plain(env, "TF_STATUS_NULL_ARGUMENT: bundle folder is null"); return 0; }
    const char *d = (*env)->GetStringUTFChars(env, dir, NULL);
    if (!d) return 0;
    uint64_t h = 0;
    tf_status st = tf_bundle_open(d, &h);
    (*env)->ReleaseStringUTFChars(env, dir, d);
    if (st != TF_STATUS_OK) throw_status(env, 0, st);
    return (jlong)h;
}

JNIEXPORT jlong JNICALL Java_com_tierforge_Tierforge_nativeLaunch(JNIEnv *env, jclass cls,
                                                                 jlong bundle, jstring app_dir,
                                                                 jdouble budget_ms,
                                                                 jint threads) {
    (void)cls;
    if (!app_dir) { throw_plain(env, "TF_STATUS_NULL_ARGUMENT: app-data folder is null"); return 0; }
    if (threads < 0) { throw_plain(env, "TF_STATUS_INVALID_ARGUMENT: threads < 0"); return 0; }
    const char *a = (*env)->GetStringUTFChars(env, app_dir, NULL);
    if (!a) return 0;
    tf_launch_options o = tf_launch_options_default();
    o.latency_budget_ms = budget_ms;
    o.threads = (uint32_t)threads;
    uint64_t h = 0;
    tf_status st = tf_launch((uint64_t)bundle, a, &o, &h);
    (*env)->ReleaseStringUTFChars(env, app_dir, a);
    if (st != TF_STATUS_OK) throw_status(env, (uint64_t)bundle, st);
    return (jlong)h;
}

/* Copies a string out of the runtime through the size query, into a Java String. */
static jstring string_of(JNIEnv *env, uint64_t h,
                         tf_status (*get)(uint64_t, char *, size_t, size_t *)) {
    size_t need = 0;
    tf_status st = get(h, NULL, 0, &need);
    if (st != TF_STATUS_OK) { throw_status(env, h, st); return NULL; }
    char *buf = malloc(need);
    if (!buf) { throw_plain(env, "out of memory"); return NULL; }
    st = get(h, buf, need, NULL);
    jstring s = st == TF_STATUS_OK ? (*env)->NewStringUTF(env, buf) : NULL;
    if (st != TF_STATUS_OK) throw_status(env, h, st);
    free(buf);
    return s;
}

JNIEXPORT jstring JNICALL Java_com_tierforge_Tierforge_nativeVariantId(JNIEnv *env, jclass cls,
                                                                      jlong launch) {
    (void)cls;
    return string_of(env, (uint64_t)launch, tf_launch_variant_id);
}

JNIEXPORT jstring JNICALL Java_com_tierforge_Tierforge_nativeReportJson(JNIEnv *env, jclass cls,
                                                                       jlong launch) {
    (void)cls;
    return string_of(env, (uint64_t)launch, tf_launch_report_json);
}

/* [predicted_ms, cache_warm, fits, fallbacks, latency_step_downs, threads, num_classes] */
JNIEXPORT jdoubleArray JNICALL Java_com_tierforge_Tierforge_nativeDecision(JNIEnv *env,
                                                                          jclass cls,
                                                                          jlong launch) {
    (void)cls;
    tf_decision d;
    tf_status st = tf_launch_decision((uint64_t)launch, &d);
    if (st != TF_STATUS_OK) { throw_status(env, (uint64_t)launch, st); return NULL; }
    jdouble v[7] = {d.predicted_latency_ms, d.cache_warm, d.fits, d.fallbacks,
                    d.latency_step_downs, d.threads, d.num_classes};
    jdoubleArray out = (*env)->NewDoubleArray(env, 7);
    if (out) (*env)->SetDoubleArrayRegion(env, out, 0, 7, v);
    return out;
}

JNIEXPORT jstring JNICALL Java_com_tierforge_Tierforge_nativeLabel(JNIEnv *env, jclass cls,
                                                                  jlong launch, jint k) {
    (void)cls;
    if (k < 0) { throw_plain(env, "TF_STATUS_INVALID_ARGUMENT: class < 0"); return NULL; }
    char buf[512];
    tf_status st = tf_label((uint64_t)launch, (uint32_t)k, buf, sizeof buf, NULL);
    if (st != TF_STATUS_OK) { throw_status(env, (uint64_t)launch, st); return NULL; }
    return (*env)->NewStringUTF(env, buf);
}

/* HWC u8 pixels → probabilities (one per class). */
JNIEXPORT jfloatArray JNICALL Java_com_tierforge_Tierforge_nativePredict(
    JNIEnv *env, jclass cls, jlong launch, jbyteArray pixels, jint width, jint height,
    jint channels, jint classes) {
    (void)cls;
    if (!pixels) { throw_plain(env, "TF_STATUS_NULL_ARGUMENT: pixels is null"); return NULL; }
    if (width < 0 || height < 0 || channels < 0 || classes <= 0) {
        throw_plain(env, "TF_STATUS_INVALID_ARGUMENT: negative size");
        return NULL;
    }
    jsize n = (*env)->GetArrayLength(env, pixels);
    jbyte *px = (*env)->GetByteArrayElements(env, pixels, NULL);
    if (!px) return NULL;
    float *probs = malloc(sizeof(float) * (size_t)classes);
    if (!probs) {
        (*env)->ReleaseByteArrayElements(env, pixels, px, JNI_ABORT);
        throw_plain(env, "out of memory");
        return NULL;
    }
    tf_status st = tf_predict_u8((uint64_t)launch, (const uint8_t *)px, (size_t)n, (uint32_t)width,
                                 (uint32_t)height, (uint32_t)channels, probs, (size_t)classes,
                                 NULL);
    (*env)->ReleaseByteArrayElements(env, pixels, px, JNI_ABORT);
    jfloatArray out = NULL;
    if (st == TF_STATUS_OK) {
        out = (*env)->NewFloatArray(env, classes);
        if (out) (*env)->SetFloatArrayRegion(env, out, 0, classes, probs);
    } else {
        throw_status(env, (uint64_t)launch, st);
    }
    free(probs);
    return out;
}

JNIEXPORT jboolean JNICALL Java_com_tierforge_Tierforge_nativeReportLatency(JNIEnv *env,
                                                                           jclass cls,
                                                                           jlong launch,
                                                                           jdouble ms) {
    (void)cls;
    int32_t down = 0;
    tf_status st = tf_report_latency((uint64_t)launch, ms, &down);
    if (st != TF_STATUS_OK) throw_status(env, (uint64_t)launch, st);
    return down ? JNI_TRUE : JNI_FALSE;
}

JNIEXPORT void JNICALL Java_com_tierforge_Tierforge_nativeClose(JNIEnv *env, jclass cls,
                                                               jlong handle) {
    (void)cls;
    tf_status st = tf_close((uint64_t)handle);
    if (st != TF_STATUS_OK) throw_status(env, 0, st);
}

package com.tierforge;

/**
 * A thin wrapper over the tierforge C ABI (runtime/include/tierforge.h) through JNI
 * (examples/android/jni/tierforge_jni.c). Kotlin calls it as it is:
 *
 * <pre>
 * Tierforge.Bundle.open(dir).use { b ->
 *     b.launch(filesDir.resolve("tierforge").path).use { launch ->
 *         val probs = launch.predict(pixels, width, height, channels)
 *     }
 * }
 * </pre>
 *
 * Every method throws {@link TierforgeException} on an error; handles are closed by
 * {@code close()} (try-with-resources, Kotlin's {@code use}); a closed handle throws, never crashes.
 * A {@link Launch} may be shared between threads (the runtime serialises calls on it).
 */
public final class Tierforge {
    private Tierforge() {}

    static {
        System.loadLibrary("tierforge_jni");
    }

    static native long nativeOpen(String bundleDir);
    static native long nativeLaunch(long bundle, String appDataDir, double budgetMs, int threads);
    static native String nativeVariantId(long launch);
    static native String nativeReportJson(long launch);
    static native double[] nativeDecision(long launch);
    static native String nativeLabel(long launch, int k);
    static native float[] nativePredict(long launch, byte[] pixels, int width, int height, int channels, int classes);
    static native boolean nativeReportLatency(long launch, double ms);
    static native void nativeClose(long handle);

    /** An opened bundle folder (manifest read and validated; weights are read at launch). */
    public static final class Bundle implements AutoCloseable {
        private long handle;

        private Bundle(long handle) {
            this.handle = handle;
        }

        /** Opens the bundle in {@code dir}. */
        public static Bundle open(String dir) {
            return new Bundle(nativeOpen(dir));
        }

        /** Launches with the bundle's latency budget and all cores; caches go to {@code appDataDir}. */
        public Launch launch(String appDataDir) {
            return launch(appDataDir, 0.0, 0);
        }

        /** Launches with a latency budget (ms, 0 = the bundle's) and a thread count (0 = all cores). */
        public Launch launch(String appDataDir, double budgetMs, int threads) {
            return new Launch(nativeLaunch(handle, appDataDir, budgetMs, threads));
        }

        @Override
        public void close() {
            if (handle != 0) {
                nativeClose(handle);
                handle = 0;
            }
        }
    }

    /** What a launch decided. */
    public static final class Decision {
        public final double predictedLatencyMs;
        public final boolean cacheWarm;
        public final boolean fits;
        public final int fallbacks;
        public final int latencyStepDowns;
        public final int threads;
        public final int numClasses;

        Decision(double[] v) {
            predictedLatencyMs = v[0];
            cacheWarm = v[1] != 0;
            fits = v[2] != 0;
            fallbacks = (int) v[3];
            latencyStepDowns = (int) v[4];
            threads = (int) v[5];
            numClasses = (int) v[6];
        }
    }

    /** A launched model: the chosen variant, loaded. */
    public static final class Launch implements AutoCloseable {
        private long handle;

        private Launch(long handle) {
            this.handle = handle;
        }

        public String variantId() {
            return nativeVariantId(handle);
        }

        public Decision decision() {
            return new Decision(nativeDecision(handle));
        }

        /** The full launch report as JSON. */
        public String reportJson() {
            return nativeReportJson(handle);
        }

        public String label(int k) {
            return nativeLabel(handle, k);
        }

        /** Class probabilities of one HWC u8 image of any size. */
        public float[] predict(byte[] pixels, int width, int height, int channels) {
            return nativePredict(handle, pixels, width, height, channels, decision().numClasses);
        }

        /** Feeds an app-measured latency; true when the launch stepped down to a smaller variant. */
        public boolean reportLatency(double ms) {
            return nativeReportLatency(handle, ms);
        }

        @Override
        public void close() {
            if (handle != 0) {
                nativeClose(handle);
                handle = 0;
            }
        }
    }
}

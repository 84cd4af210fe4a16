package com.tierforge;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Paths;

/**
 * The app's start-up through the Java wrapper, printing what examples/c/app_startup.c prints:
 * {@code java -Djava.library.path=DIR com.tierforge.SmokeTest BUNDLE APP_DATA [IMAGE.pgm ...]}.
 * Then it checks that misuse throws instead of crashing.
 */
public final class SmokeTest {
    public static void main(String[] args) throws IOException {
        try (Tierforge.Bundle bundle = Tierforge.Bundle.open(args[0]);
             Tierforge.Launch launch = bundle.launch(args[1])) {
            Tierforge.Decision d = launch.decision();
            System.out.println("variant: " + launch.variantId());
            System.out.println("cache: " + (d.cacheWarm ? "warm" : "cold"));
            for (int i = 2; i < args.length; i++) {
                byte[] raw = Files.readAllBytes(Paths.get(args[i]));
                int[] header = new int[3];
                int pos = pgmHeader(raw, header);
                byte[] px = java.util.Arrays.copyOfRange(raw, pos, pos + header[0] * header[1]);
                float[] probs = launch.predict(px, header[0], header[1], 1);
                int best = 0;
                for (int k = 1; k < probs.length; k++) if (probs[k] > probs[best]) best = k;
                System.out.printf("%s: %s %.6f%n", args[i], launch.label(best), probs[best]);
            }
            try {
                launch.predict(new byte[3], 2, 2, 1);
                System.out.println("misuse: no error");
            } catch (TierforgeException e) {
                System.out.println("misuse: " + e.getMessage().split(":")[0]);
            }
        }
        try {
            Tierforge.Bundle.open(args[1] + "/no-such-bundle");
        } catch (TierforgeException e) {
            System.out.println("missing bundle: " + e.getMessage().split(":")[0]);
        }
    }

    /** Parses "P5 W H 255" (no comments); returns the offset of the pixels. */
    private static int pgmHeader(byte[] b, int[] out) {
        int pos = 2, field = 0;
        while (field < 3) {
            while (Character.isWhitespace(b[pos])) pos++;
            if (b[pos] == '#') { while (b[pos] != '\n') pos++; continue; }
            int v = 0;
            while (!Character.isWhitespace(b[pos])) v = v * 10 + (b[pos++] - '0');
            out[field++] = v;
        }
        return pos + 1;
    }
}

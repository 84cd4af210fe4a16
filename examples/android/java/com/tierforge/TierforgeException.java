package com.tierforge;

/** An error from the tierforge runtime: the status name and the message naming the file and the fix. */
public final class TierforgeException extends RuntimeException {
    public TierforgeException(String message) {
        super(message);
    }
}

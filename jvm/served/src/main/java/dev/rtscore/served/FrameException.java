package dev.rtscore.served;

/** A frame or request the model cannot score; answered with INVALID_ARGUMENT and this message. */
final class FrameException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    FrameException(String message) {
        super(message);
    }
}

package dev.rtscore.reference;

/** A failure the harness reports as one line on stderr (or one error reply in serve mode). */
final class HarnessException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    HarnessException(String message) {
        super(message);
    }

    HarnessException(String message, Throwable cause) {
        super(message + ": " + rootMessage(cause), cause);
    }

    /** The deepest cause's message: MLeap wraps the useful sentence in layers of Try and reflection. */
    static String rootMessage(Throwable error) {
        Throwable deepest = error;
        String message = describe(error);
        while (deepest.getCause() != null && deepest.getCause() != deepest) {
            deepest = deepest.getCause();
            if (deepest.getMessage() != null) {
                message = describe(deepest);
            }
        }
        return message;
    }

    /** Turn any failure into one line of text. */
    static String oneLine(Throwable error) {
        String text = error instanceof HarnessException ? error.getMessage() : rootMessage(error);
        return text.replace('\r', ' ').replace('\n', ' ');
    }

    private static String describe(Throwable error) {
        String message = error.getMessage();
        if (message == null || message.isBlank()) {
            return error.getClass().getName();
        }
        // A NoSuchElementException "key not found: x" says little without its type; keep the name.
        return error.getClass().getSimpleName() + ": " + message;
    }
}

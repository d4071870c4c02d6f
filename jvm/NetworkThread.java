import java.io.IOException;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/**
 * One network thread of broker-jvm-transferto, as a Kafka processor: one {@link Selector} over the non-blocking
 * channels of its consumers (consumer k goes to thread k mod N, as Kafka's acceptor deals connections), serving each
 * writable consumer what is left of its fetch with transferTo ({@link Stream#visit}) and moving on when its socket
 * is full. A consumer that stopped reading is simply not selected, and holds back nobody else. One consumer's
 * failure ends the span for every thread, as it fails the repetition.
 */
final class NetworkThread {
    /** Longest a select waits before the span's end is checked again. */
    private static final long SELECT_MS = 200;

    final List<Stream> consumers = new ArrayList<>();
    /** Selects made in the last span. */
    long selects;

    /**
     * Serves `passes` passes to every consumer in fetches of `fetch` bytes, then, with `end`, ends each TLS session;
     * `failed` is set by the first failure of any thread and ends every thread's loop. The channels are blocking again when this returns (xferbench reads
     * the sink's notices and reports through its copies of these sockets).
     */
    void serve(int passes, long fetch, boolean end, java.util.concurrent.atomic.AtomicBoolean failed) {
        selects = 0;
        for (Stream s : consumers) {
            s.startConsumer(passes, fetch);
        }
        Selector selector = null;
        try {
            selector = Selector.open();
            for (Stream s : consumers) {
                s.channel().configureBlocking(false);
                s.channel().register(selector, SelectionKey.OP_WRITE, s);
            }
            int open = consumers.size();
            while (open > 0 && !failed.get()) {
                selects++;
                selector.select(SELECT_MS);
                Iterator<SelectionKey> it = selector.selectedKeys().iterator();
                while (it.hasNext()) {
                    SelectionKey key = it.next();
                    it.remove();
                    Stream s = (Stream) key.attachment();
                    int visit;
                    try {
                        visit = s.visit();
                    } catch (IOException | RuntimeException e) {
                        s.failed(e);
                        failed.set(true);
                        visit = Stream.DONE;
                    }
                    if (visit == Stream.DONE) {
                        key.cancel();
                        open--;
                    }
                }
            }
        } catch (IOException e) {
            // The selector itself failed: every consumer of this thread not yet done fails with it.
            for (Stream s : consumers) {
                s.failed(e);
            }
            failed.set(true);
        } finally {
            if (selector != null) {
                try {
                    // Closing deregisters every channel, which may then block again.
                    selector.close();
                } catch (IOException e) {
                    // Nothing of the span depends on the selector once it is closed or abandoned.
                }
            }
            for (Stream s : consumers) {
                try {
                    s.channel().configureBlocking(true);
                } catch (IOException e) {
                    s.failed(e);
                    failed.set(true);
                }
            }
        }
        // The stream's last span: a TLS session ends with close_notify, a few bytes, written blocking.
        for (Stream s : consumers) {
            if (end && !failed.get()) {
                try {
                    s.end();
                } catch (IOException e) {
                    s.failed(e);
                    failed.set(true);
                }
            }
        }
    }

    /** How many selects every thread made, for the reply. */
    static long selects(List<NetworkThread> threads) {
        long n = 0;
        for (NetworkThread t : threads) {
            n += t.selects;
        }
        return n;
    }
}

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.management.CompilationMXBean;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.lang.management.RuntimeMXBean;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;

/**
 * xferbench's JVM sender: the Java side of the jvm-* strategies (jvm-transferto, jvm-read-write, jvm-nio, their
 * parallel- forms, and broker-jvm-transferto). It does what a Java program that sends a file does (connect, send, close) and nothing of the
 * benchmark's protocol: xferbench writes each stream's header, reads the sink's answers and sets the congestion
 * control through its own copies of these sockets, before and after the timed section. One JVM serves one case,
 * its warm-ups and its repetitions, on command, as JMH forks one JVM per benchmark.
 *
 * <p>Commands come one a line on stdin; each is answered with one line of JSON on stdout:
 * <pre>
 *   hello                          the JVM, and System.nanoTime() now (xferbench checks it reads its clock)
 *   connect METHOD HOST PORT N     N connections (java.net.Socket for read-write, SocketChannel otherwise)
 *   file PATH                      the file the next streams send (the rest of the line)
 *   stream I METHOD CHUNK START LEN STRIDE COUNT [...]
 *                                  connection I's file, buffer and ranges: groups of four, each COUNT ranges of
 *                                  LEN bytes from START, STRIDE apart
 *   tls I PIN                      connection I's TLS handshake (jvm-tls), pinned to the certificate whose SHA-256
 *                                  is PIN; answers with the suite and protocol
 *   arm PASSES END                 one thread per connection, started and waiting (answers with their thread ids);
 *                                  END 1: the streams' last span (a TLS session then ends with close_notify)
 *   arm PASSES END THREADS FETCH   a broker's shape instead (broker-jvm-transferto, broker-jvm-tls): THREADS
 *                                  network threads, each one Selector over its connections (k mod THREADS),
 *                                  non-blocking, serving each writable one what is left of its fetch of FETCH
 *                                  bytes
 *   go                             releases them; answers once every one has sent PASSES passes
 *   release                        lets the threads of the last span end (after xferbench read their counters)
 *   close                          closes connections and files
 *   quit
 * </pre>
 */
public final class Sender {
    private final PrintStream out;
    private final List<Stream> streams = new ArrayList<>();
    private Path file;
    /** The span armed or last run, until released. */
    private Span span;

    /** One span's threads and the latches that hold them: released together, kept alive until told. */
    private static final class Span {
        final CountDownLatch ready;
        final CountDownLatch go = new CountDownLatch(1);
        final CountDownLatch sent;
        final CountDownLatch exit = new CountDownLatch(1);
        final List<Thread> threads = new ArrayList<>();
        volatile boolean cancelled;
        boolean released;
        /** A broker's network threads (null when each connection has a thread of its own). */
        List<NetworkThread> network;

        Span(int n) {
            ready = new CountDownLatch(n);
            sent = new CountDownLatch(n);
        }
    }

    private Sender(PrintStream out) {
        this.out = out;
    }

    public static void main(String[] args) throws IOException {
        // Replies go to the real stdout, flushed by hand; anything else the JVM prints goes to stderr.
        PrintStream out = new PrintStream(System.out, false, "UTF-8");
        System.setOut(System.err);
        Sender sender = new Sender(out);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.equals("quit")) {
                break;
            }
            String reply;
            try {
                reply = sender.command(line);
            } catch (Exception e) {
                reply = "{\"ok\":false,\"error\":" + Json.text(e.toString()) + "}";
            }
            out.print(reply);
            out.print('\n');
            out.flush();
        }
        sender.close();
    }

    private String command(String line) throws Exception {
        String[] w = line.split(" ");
        switch (w[0]) {
            case "hello":
                return hello();
            case "connect":
                return connect(w[1], w[2], Integer.parseInt(w[3]), Integer.parseInt(w[4]));
            case "file":
                file = Paths.get(line.substring("file ".length()));
                return "{\"ok\":true}";
            case "stream":
                return stream(w);
            case "tls":
                return streams.get(Integer.parseInt(w[1])).tls(w[2]);
            case "arm": {
                boolean end = w[2].equals("1");
                if (w.length == 5) {
                    return armBroker(Integer.parseInt(w[1]), end, Integer.parseInt(w[3]), Long.parseLong(w[4]));
                }
                return arm(Integer.parseInt(w[1]), end);
            }
            case "go":
                return go();
            case "release":
                release();
                return "{\"ok\":true}";
            case "close":
                close();
                return "{\"ok\":true}";
            default:
                throw new IllegalArgumentException("unknown command '" + w[0] + "'");
        }
    }

    private String hello() {
        long now = System.nanoTime();
        RuntimeMXBean rt = ManagementFactory.getRuntimeMXBean();
        return "{\"ok\":true,\"now_ns\":" + now
                + ",\"version\":" + Json.text(System.getProperty("java.vm.version"))
                + ",\"vendor\":" + Json.text(System.getProperty("java.vm.vendor"))
                + ",\"vm\":" + Json.text(System.getProperty("java.vm.name"))
                + ",\"options\":" + Json.text(String.join(" ", rt.getInputArguments())) + "}";
    }

    private String connect(String method, String host, int port, int n) throws IOException {
        close();
        StringBuilder ports = new StringBuilder();
        for (int i = 0; i < n; i++) {
            Stream s = Stream.connect(i, method, host, port);
            streams.add(s);
            ports.append(i == 0 ? "" : ",").append(s.localPort());
        }
        return "{\"ok\":true,\"ports\":[" + ports + "]}";
    }

    private String stream(String[] w) throws IOException {
        int i = Integer.parseInt(w[1]);
        long[] groups = new long[w.length - 4];
        for (int k = 0; k < groups.length; k++) {
            groups[k] = Long.parseLong(w[4 + k]);
        }
        streams.get(i).prepare(file, w[2], Integer.parseInt(w[3]), groups);
        return "{\"ok\":true}";
    }

    /** One thread per connection. */
    private String arm(int passes, boolean end) throws InterruptedException {
        release();
        Span sp = new Span(streams.size());
        List<Runnable> jobs = new ArrayList<>();
        for (Stream s : streams) {
            jobs.add(() -> s.send(passes, end));
        }
        return start(sp, jobs, "xferbench-send-");
    }

    /** The broker's network threads, consumer k to thread k mod N. */
    private String armBroker(int passes, boolean end, int threads, long fetch) throws InterruptedException {
        release();
        int n = Math.max(1, Math.min(threads, streams.size()));
        List<NetworkThread> network = new ArrayList<>();
        for (int t = 0; t < n; t++) {
            network.add(new NetworkThread());
        }
        for (Stream s : streams) {
            network.get(s.index % n).consumers.add(s);
        }
        Span sp = new Span(n);
        sp.network = network;
        java.util.concurrent.atomic.AtomicBoolean failed = new java.util.concurrent.atomic.AtomicBoolean();
        List<Runnable> jobs = new ArrayList<>();
        for (NetworkThread nt : network) {
            jobs.add(() -> nt.serve(passes, fetch, end, failed));
        }
        return start(sp, jobs, "xferbench-network-");
    }

    /**
     * Starts `sp`'s threads, one per job: each says which kernel thread it is, waits for `go`, runs its job (unless
     * the span was released without going) and stays alive until xferbench has read its counters in /proc. Answers
     * with their thread ids once every one waits.
     */
    private String start(Span sp, List<Runnable> jobs, String name) throws InterruptedException {
        span = sp;
        long[] tids = new long[jobs.size()];
        for (int k = 0; k < jobs.size(); k++) {
            int index = k;
            Runnable job = jobs.get(k);
            Thread t = new Thread(() -> {
                tids[index] = Stream.ownTid();
                sp.ready.countDown();
                awaitQuietly(sp.go);
                try {
                    if (!sp.cancelled) {
                        job.run();
                    }
                } finally {
                    sp.sent.countDown();
                }
                awaitQuietly(sp.exit);
            }, name + k);
            sp.threads.add(t);
            t.start();
        }
        // Each thread's id is written before it counts down `ready`, so it is seen once `ready` is through.
        sp.ready.await();
        StringBuilder reply = new StringBuilder();
        for (long tid : tids) {
            reply.append(reply.length() == 0 ? "" : ",").append(tid);
        }
        return "{\"ok\":true,\"tids\":[" + reply + "]}";
    }

    private String go() throws InterruptedException {
        Span sp = span;
        if (sp == null || sp.released) {
            throw new IllegalStateException("go before arm");
        }
        CompilationMXBean jit = ManagementFactory.getCompilationMXBean();
        long jit0 = jit.getTotalCompilationTime();
        long[] gc0 = gcTotals();
        sp.released = true;
        sp.go.countDown();
        sp.sent.await();
        long jit1 = jit.getTotalCompilationTime();
        long[] gc1 = gcTotals();
        StringBuilder reply = new StringBuilder("{\"ok\":true,\"jit_ms\":").append(jit1 - jit0)
                .append(",\"gc_ms\":").append(gc1[0] - gc0[0])
                .append(",\"gc_count\":").append(gc1[1] - gc0[1])
                .append(",\"selects\":").append(sp.network == null ? 0 : NetworkThread.selects(sp.network))
                .append(",\"streams\":[");
        for (Stream s : streams) {
            reply.append(s.index == 0 ? "" : ",").append(s.result());
        }
        return reply.append("]}").toString();
    }

    /** Milliseconds every collector took, and how many collections, so far. */
    private static long[] gcTotals() {
        long ms = 0;
        long count = 0;
        for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) {
            ms += Math.max(0, gc.getCollectionTime());
            count += Math.max(0, gc.getCollectionCount());
        }
        return new long[] {ms, count};
    }

    /** Lets the last span's threads end (an armed span that never went ends without sending). */
    private void release() throws InterruptedException {
        Span sp = span;
        if (sp == null) {
            return;
        }
        sp.cancelled = !sp.released;
        sp.go.countDown();
        sp.exit.countDown();
        for (Thread t : sp.threads) {
            t.join();
        }
        span = null;
    }

    private void close() {
        try {
            release();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        for (Stream s : streams) {
            s.close();
        }
        streams.clear();
    }

    private static void awaitQuietly(CountDownLatch latch) {
        try {
            latch.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
